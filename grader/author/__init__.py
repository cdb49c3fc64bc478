"""Authoring challenges: a coach's folder of photos made into a challenge (``grader new-challenge``):
every image checked, the splits chosen with groups kept whole, ``challenge.toml``, the brief, the
rubric, the recorded splits, and a starter made from a marked solution or a reference skeleton.

The stage above the pipeline: it may import the pipeline and every stage below; only ``grader/cli``
imports it.

Modules:

- ``baselines``: The baseline model of a reference skeleton, one per framework.
- ``brief``: A new challenge's brief, ``challenges/<id>/README.md``.
- ``create``: ``grader new-challenge``, the work.
- ``findings``: What ``grader new-challenge`` finds in a coach's images before it writes anything.
- ``rubric``: A new challenge's rubric, from the criteria the coach picks.
- ``scan``: Every image of a coach's folder read once, across a pool of processes.
- ``skeleton``: A reference skeleton for a new challenge without a solution.
- ``source``: A coach's folder of photos, read as ``grader new-challenge`` finds it.
- ``spec``: The files that define a new challenge, as text.
- ``splits``: The splits of a new challenge, chosen so that groups of images stay on one side.
- ``starter``: A starter notebook made from a solution notebook.

Other packages import through this face (``from grader.author import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
