"""grader: grade deep-learning image-classification notebooks on hidden test sets.

The public surface is the command line (``grader --help``); modules are documented one by one.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
