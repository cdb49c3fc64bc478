"""``python -m grader.server.child``: one call of the server's own code in a child process.

Reads a pickled ``(function, args, kwargs)`` from stdin, runs it at niceness
:data:`CHILD_NICENESS` on every CPU the server was given (:func:`grader.server.cpus.unpin_child`),
and writes the pickled ``(True, value)`` or ``(False, "Type: message")`` to
stdout (what it prints goes to stderr, the server's log). Started by
:func:`grader.server.serve.in_child` with ``env=`` given (DEVELOPERS.md, "Starting processes while
other threads run"). Both sides are the grader's own code in the same environment: nothing a
student's kernel wrote is unpickled here or there.
"""

from __future__ import annotations

import os
import pickle
import sys

from grader.server.cpus import unpin_child

__all__ = ["CHILD_NICENESS", "main"]

CHILD_NICENESS = 10  # a start-up child yields the CPU to the server's pages and workers


def main() -> None:
    """Run the call read from stdin; its outcome on stdout."""
    answer = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a print in the call cannot corrupt the answer
    os.nice(CHILD_NICENESS)
    unpin_child()  # the server's own CPU is for its pages (grader.server.cpus)
    fn, args, kwargs = pickle.load(sys.stdin.buffer)
    try:
        outcome: tuple[bool, object] = (True, fn(*args, **kwargs))
    except BaseException as err:  # noqa: BLE001  # reported to the parent, which raises it
        outcome = (False, f"{type(err).__name__}: {err}")
    with answer:
        pickle.dump(outcome, answer)


if __name__ == "__main__":
    main()
