"""The hooks the runner loads into the student's kernel from their files (``probe.py``,
``capture.py``, ``shutdown.py``): read from disk and run there, never imported by the grader.
"""

__all__: list[str] = []
