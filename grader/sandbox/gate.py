"""The gate of the hidden images: closed while the notebook's cells run, opened for the probe.

A team that can see a hidden test image can label it by hand, and since teams read their own
scorecards, anything the kernel shows them is a channel out of the sandbox. So the hidden test
images (and the other held-out sets: the added class's images, MNIST's test images) are on no
path the notebook's cells can read while they run:

- each held-out folder is reached through a *gate*, a folder of the grader's with mode 000 made
  for this run (:func:`make_gate`); inside the sandbox the folders are bound read-only *under*
  it (bubblewrap's ``--ro-bind``), so the kernel's uid cannot traverse the gate, list or open
  anything below it, and cannot change its mode (the gate is bound read-only: ``EROFS``);
- after the last cell, the runner runs the probe's visible step (the new images, the history,
  the figures), writes its files, and asks for the gate (one byte on a pipe,
  :mod:`grader.student.runner`); the grader then copies every file that may reach a team (the cell
  timeline, the executed notebook, the visible probe's output, the runner's log) out of the
  sandbox's reach, lists the saved models, and only then opens the gate (``chmod 0755``,
  :meth:`HiddenGate.open`) and tells the runner, which runs the probe's hidden step;
- from that moment nothing the kernel produces reaches a team: the grader reads only the hidden
  step's answers (class names and fixed error kinds, :class:`grader.evidence.records.HiddenProbeOutput`).

The kernel shares its uid with the runner, so it can forge the request: then the grader copies
the files as they are at that moment and the notebook is graded on them (cells still running
are a failed run); what the cells do after it never reaches a team. Without the sandbox the
kernel is the grader's own user and the gate is no protection (the scorecard says the run was
not sandboxed).

Method: POSIX directory permissions (search permission on every component of a path,
``path_resolution(7)``), read-only bind mounts (``mount(2)``, ``MS_RDONLY``), as bubblewrap sets
them up.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HiddenGate", "make_gate"]


@dataclass(frozen=True)
class HiddenGate:
    """One run's gate (see the module's docstring).

    Attributes:
        root: the gate folder, mode 000 until :meth:`open`.
        folders: (source, target) of each held-out folder: ``target`` is where the probe reads
            ``source``, inside ``root`` (a mount point in the sandbox, a symbolic link without it).
        mounted: whether the targets are mount points for the sandbox's bind mounts.
    """

    root: Path
    folders: tuple[tuple[Path, Path], ...]
    mounted: bool

    def path_of(self, source: Path) -> Path:
        """Where the probe reads ``source``.

        Raises:
            KeyError: ``source`` is not behind this gate.
        """
        for src, target in self.folders:
            if src == source:
                return target
        raise KeyError(str(source))

    @property
    def is_open(self) -> bool:
        return bool(os.stat(self.root).st_mode & 0o005)

    def open(self) -> None:
        """Let the sandbox's uid traverse the gate (mode 0755): the held-out folders become
        readable at their targets, inside the sandbox at once (the bind mounts share the inode)."""
        os.chmod(self.root, 0o755)


def make_gate(parent: Path, sources: Sequence[Path], *, mounted: bool) -> HiddenGate:
    """Make a closed gate ``parent/gate`` for ``sources`` (the held-out image folders).

    Each source gets a neutral name inside the gate (``s0``, ``s1``...: the target's name says
    nothing of its set); with ``mounted`` the targets are empty folders, mount points for the
    sandbox's read-only binds (:meth:`grader.sandbox.session.SandboxSession.wrap`), else symbolic links
    to the sources. ``parent`` must exist and be the grader's (it is not bound into the
    sandbox).

    Raises:
        FileExistsError: ``parent/gate`` exists.
    """
    root = parent / "gate"
    root.mkdir(mode=0o755)
    folders = []
    for number, source in enumerate(sources):
        target = root / f"s{number}"
        if mounted:
            target.mkdir(mode=0o755)
        else:
            target.symlink_to(source.resolve(), target_is_directory=True)
        folders.append((source, target))
    os.chmod(root, 0)  # closed: not even its owner may traverse it without CAP_DAC_OVERRIDE
    return HiddenGate(root=root, folders=tuple(folders), mounted=mounted)
