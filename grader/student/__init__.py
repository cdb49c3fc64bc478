"""The student's side of the trust boundary: the notebook runner (``python -m
grader.student.runner``) and the hooks it loads into the kernel (``kernel/``: probe, capture,
shutdown), run with the student's interpreter inside the sandbox.

It imports nothing of grader (an import-linter contract), and this face imports nothing either:
the runner starts as a script, and :mod:`grader.execute` takes ``kill_tree`` from it directly.
"""

__all__: list[str] = []
