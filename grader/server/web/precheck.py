"""Checks of an uploaded notebook before it takes a slot: what ``grader check`` would say of the
file, the challenge it names, and the syntax of its code cells. Each refusal is a message for the
team with a fix (never an exception, never a server path); nothing here runs what was uploaded.

- **The intake's diagnosis**: the file is read as the workers read it,
  :func:`grader.intake.read_notebook` (nbformat 3 and 4, a byte order mark, UTF-16...), and what
  it is not is named by the intake's own :class:`~grader.intake.MalformedNotebook` (a web page
  saved as ``.ipynb``, merge-conflict markers, a cut-off upload, a script, another tool's export,
  a schema fault, a language other than Python), with its fix.
- **The challenge it names**: ``metadata.grader.challenge``, which the starter notebook sets
  (:func:`grader.intake.challenge_of` with no known ids and no ``--challenge``: the metadata
  alone, never the file name); :func:`first_problem` refuses a notebook that names another
  challenge than the one picked, with both names.
- **Syntax**: each code cell is turned into Python as IPython turns it before it runs
  (:meth:`IPython.core.inputtransformer2.TransformerManager.transform_cell`: ``%magics``,
  ``!shell`` lines, ``%%cell`` magics, ``x?`` help) and compiled with :func:`compile` (top-level
  ``await`` allowed, as IPython's autoawait does; compile-time errors such as ``return`` outside
  a function count too, warnings are ignored). The first error is named by its cell (the
  student's own number: 1-based, markdown cells counted, as on the scorecard's timeline) and line.
  A cell that compiles as it stands is not transformed (what IPython rewrites is what Python
  refuses), which makes the check of a plain notebook about four times cheaper.
  Compiled with the server's Python: the kernel runs the project's interpreter (the same one
  where ``grader serve`` runs from the project's environment). A cell IPython's transform fails
  on is left unchecked (logged): the kernel decides.

A notebook up to :data:`INLINE_BYTES` is checked in the server's process (at most
:data:`INLINE_AT_ONCE` at once), from its bytes where the upload is held in memory; a larger one
in a child process (``python -I -m grader.server.web.precheck PATH NAME FILENAME MEMORY_BYTES``)
whose address space is limited to :data:`CHILD_MEMORY_BYTES`, at most :data:`CHILDREN` at once, as
:mod:`grader.server.web.nbverdict` does: a full parse of a 60 MiB file of tiny values takes
gigabytes, and the server's memory must not grow with what a file holds. A child that fails or
runs past :data:`CHILD_TIMEOUT_S` leaves the notebook unchecked (the workers still read it, as
before these checks).

A zip (:func:`check_zip`) is checked through a skeleton of it: its notebooks as they are and every
other entry empty, given to :func:`grader.intake.intake_upload` with the picked challenge as the
workers give it, so that the notebooks checked are those the workers will grade; its images are
never unpacked here.
"""

from __future__ import annotations

import ast
import json
import logging
import resource
import shutil
import subprocess
import sys
import threading
import warnings
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nbformat import NotebookNode

__all__ = ["CHILDREN", "CHILD_MEMORY_BYTES", "CHILD_TIMEOUT_S", "INLINE_AT_ONCE", "INLINE_BYTES", "ZIP_NOTEBOOK_BYTES",
           "ZIP_NOTEBOOKS", "Checked", "check_notebook", "check_zip", "first_problem", "load_upload_checks",
           "syntax_problem"]

log = logging.getLogger(__name__)

INLINE_BYTES = 1 << 20  # checked in the server's process up to this size
INLINE_AT_ONCE = 4
CHILD_MEMORY_BYTES = 1 << 30  # the child's address space (it starts and imports within 256 MiB)
CHILD_TIMEOUT_S = 60.0
CHILDREN = 2
ZIP_NOTEBOOKS = 50  # a zip with more notebook entries is not checked here (the workers read it)
ZIP_NOTEBOOK_BYTES = 256 << 20  # nor one whose notebooks hold more than this, uncompressed
_SHOWN = 80  # characters of a faulty line quoted
_children = threading.BoundedSemaphore(CHILDREN)
_inline = threading.BoundedSemaphore(INLINE_AT_ONCE)
# warnings.catch_warnings swaps the process's filters: two threads inside it at once would restore
# each other's, so the uploads' threads compile one at a time (milliseconds a notebook)
_quiet = threading.Lock()
_AGAIN = "Nothing was queued and no submission was used."


@dataclass(frozen=True)
class Checked:
    """What the checks found of one notebook.

    Attributes:
        name: the notebook as the team knows it (``toy.ipynb``, ``team.zip: code/toy.ipynb``).
        problem: why it is not a notebook (the intake's diagnosis, a sentence with its fix), or None.
        challenge: the challenge its metadata names, or None.
        syntax: its first syntax error (:func:`syntax_problem`), or None.
    """

    name: str
    problem: str | None = None
    challenge: str | None = None
    syntax: str | None = None


def _leading_blank(source: str) -> int:
    """Lines IPython's cleanup removes from the top of ``source`` (``leading_empty_lines``)."""
    lines = source.splitlines()
    return next((i for i, line in enumerate(lines) if line and not line.isspace()), 0)


def _compiles(source: str) -> bool:
    """``source`` compiles as Python as it stands: IPython's transform of such a cell compiles too (its
    transforms rewrite only lines Python refuses: ``%magic``, ``!shell``, ``x?``, prompts, an indented
    first line), so the transform (about 0.3 ms a cell, most of an upload's check) is skipped."""
    try:
        with _quiet, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, "cell", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def syntax_problem(nb: NotebookNode, *, name: str) -> str | None:
    """The first syntax error of ``nb``'s code cells (module docstring), as a sentence with its
    cell, line and fix; None when every code cell compiles."""
    from IPython.core.inputtransformer2 import TransformerManager

    from grader.intake import student_code_cells

    manager = TransformerManager()  # type: ignore[no-untyped-call]  # IPython's, untyped
    for number, source in student_code_cells(nb):
        if not source.strip() or _compiles(source):
            continue
        try:
            code = manager.transform_cell(source)
            with _quiet, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compile(code, f"cell {number}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        except SyntaxError as err:
            line = (err.lineno or 1) + _leading_blank(source)
            text = (err.text or "").strip()
            quoted = f" (`{text[:_SHOWN]}{'...' if len(text) > _SHOWN else ''}`)" if text else ""
            return (f"{name}: cell {number}, line {line}: {err.msg}{quoted}. {_AGAIN} Fix: correct that line (the "
                    "cell shows the same error when it runs in Jupyter), save the notebook and upload it again.")
        except (ValueError, RecursionError, MemoryError) as err:  # a null byte; nesting the compiler refuses
            why = "it holds a null byte" if isinstance(err, ValueError) else "its code nests too deeply to compile"
            return (f"{name}: cell {number} cannot be compiled: {why}. {_AGAIN} Fix: correct that cell, save the "
                    "notebook and upload it again.")
        except Exception:  # IPython's transform failed on it: not the team's fault, the kernel decides
            log.warning("%s: cell %d could not be transformed as IPython does; not checked", name, number,
                        exc_info=True)
    return None


def load_upload_checks() -> None:
    """Import what the checks run with (nbformat and its schema validator, IPython's input
    transformer) and check one small notebook: about 0.5 s once per process on the 2-core benchmark
    machine. ``grader serve`` calls it before it listens: paid on the first upload instead, it held
    the import lock and the GIL while the fifty uploads of an event's first minute waited (issue 28:
    every one of them answered about half a second later, ``benchmarks/server.py``'s phase 1)."""
    import nbformat

    warm_up = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])).encode()
    checked = _check_here(warm_up, "warm-up.ipynb", "warm-up.ipynb")
    if checked.problem is not None or checked.syntax is not None:
        raise RuntimeError(f"the checks' warm-up notebook was refused: {checked}")


def _check_here(data: bytes, name: str, filename: str) -> Checked:
    """:func:`check_notebook` of the bytes ``data``, in this process."""
    from grader.intake import MalformedNotebook, challenge_of, parse_notebook

    shown = Path(filename)  # the intake's fixes name the file as the team knows it
    try:
        nb = parse_notebook(data, shown)
    except MalformedNotebook as err:
        fix = f" Fix: {err.fix[:1].upper()}{err.fix[1:]}." if err.fix else ""
        return Checked(name=name, problem=f"{name} is not a notebook: {err.reason}.{fix}")
    found = challenge_of(shown, nb, (), explicit=None)  # no known ids: the metadata alone
    challenge = found if isinstance(found, str) else None
    return Checked(name=name, challenge=challenge, syntax=syntax_problem(nb, name=name))


def check_notebook(source: Path | bytes, *, name: str, filename: str | None = None) -> Checked:
    """Check the notebook ``source`` (module docstring), called ``name`` in the messages.

    Args:
        source: the notebook file, or its bytes (an upload held in memory; at most
            :data:`INLINE_BYTES`).
        name: the notebook as the team knows it (``toy.ipynb``, ``team.zip: code/toy.ipynb``).
        filename: its file name in the intake's fixes (``python -m json.tool toy.ipynb``);
            default: the file's own name, or the last part of ``name``.

    Returns:
        the intake's diagnosis, the challenge its metadata names and its first syntax error (each
        None where there is none). A notebook the child could not check has none of them.

    Raises:
        OSError: the file ``source`` cannot be read.
        ValueError: ``source`` is bytes over :data:`INLINE_BYTES`.
    """
    if isinstance(source, bytes):
        if len(source) > INLINE_BYTES:
            raise ValueError(f"{name}: {len(source)} bytes held in memory, over {INLINE_BYTES}: check its file")
        shown = filename or PurePosixPath(name.replace("\\", "/")).name
        with _inline:
            return _check_here(source, name, shown)
    shown = filename or source.name
    if source.stat().st_size <= INLINE_BYTES:
        with _inline:
            return _check_here(source.read_bytes(), name, shown)
    with _children:
        try:
            done = subprocess.run([sys.executable, "-I", "-m", __name__, str(source), name, shown,
                                   str(CHILD_MEMORY_BYTES)], capture_output=True, timeout=CHILD_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return Checked(name=name)
    try:
        found = json.loads(done.stdout.decode("utf-8", "replace"))
        return Checked(name=name, problem=found["problem"], challenge=found["challenge"], syntax=found["syntax"])
    except (ValueError, KeyError, TypeError):  # killed, out of memory: left to the workers, as before
        return Checked(name=name)


def _skeleton(path: Path, dest: Path) -> bool:
    """Write ``dest``: the zip ``path`` with its notebooks as they are and every other entry empty
    (the same names and times); False, nothing checked, past :data:`ZIP_NOTEBOOKS` or
    :data:`ZIP_NOTEBOOK_BYTES`."""
    with zipfile.ZipFile(path) as archive, zipfile.ZipFile(dest, "x") as out:
        entries = archive.infolist()
        notebooks = [i for i in entries if not i.is_dir() and i.filename.lower().endswith(".ipynb")]
        if len(notebooks) > ZIP_NOTEBOOKS or sum(i.file_size for i in notebooks) > ZIP_NOTEBOOK_BYTES:
            return False
        for info in entries:
            copy = zipfile.ZipInfo(info.filename, date_time=info.date_time)
            copy.external_attr = info.external_attr
            if info in notebooks:
                with archive.open(info) as src, out.open(copy, "w") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
            else:
                out.writestr(copy, b"")
    return True


def check_zip(path: Path, *, name: str, folder: Path, challenge: str, challenges: Sequence[str]) -> list[Checked]:
    """Check the notebooks a worker would grade in the zip ``path`` (module docstring), already
    judged safe (:func:`grader.intake.zip_problem`).

    Args:
        path: the zip.
        name: its name for the team.
        folder: a private folder for the skeleton and its unpacked copy (the form's).
        challenge: the challenge picked (the workers' ``explicit``).
        challenges: the project's challenge ids.

    Returns:
        one :class:`Checked` per notebook to be graded; one with the intake's problem when none
        would be (no notebook at the top or one folder down); empty when the zip is not checked
        here (too many or too large notebooks).

    Raises:
        OSError: the zip cannot be read or the skeleton written.
    """
    from grader.intake import intake_upload

    work = folder / "precheck"
    work.mkdir()
    skeleton = work / PurePosixPath(name).name
    try:
        if not _skeleton(path, skeleton):
            return []
    except (zipfile.BadZipFile, EOFError, NotImplementedError, ValueError):  # judged readable: left to the workers
        return []
    found = intake_upload(skeleton, workspace=work, name=PurePosixPath(name).stem, challenges=challenges,
                          explicit=challenge)
    if found.problems:
        return [Checked(name=name, problem=f"{found.problems[0]}.")]
    return [check_notebook(nb, name=f"{name}: {nb.relative_to(found.root).as_posix()}") for nb in found.notebooks]


def first_problem(checked: Sequence[Checked], *, picked: str, challenges: Sequence[str]) -> str | None:
    """Why the notebooks ``checked`` cannot be graded as challenge ``picked``, or None: the first
    intake diagnosis, else the first notebook naming another challenge, else the first syntax error.

    A notebook that names no challenge in its metadata is graded as the one picked (as before);
    one that names ``picked`` is; one that names another is refused, both names and the fix in the
    message (one of ``challenges``, the event's, or not).
    """
    for found in checked:
        if found.problem is not None:
            return found.problem
    for found in checked:
        if found.challenge is None or found.challenge == picked:
            continue
        if found.challenge in challenges:
            return (f"{found.name} is a notebook for challenge {found.challenge} (its metadata says so), but it was "
                    f"sent as {picked}. {_AGAIN} Fix: choose {found.challenge} in the Challenge list and send it "
                    f"again; or, if it is meant for {picked}, copy its cells into {picked}'s starter notebook.")
        return (f"{found.name} names challenge {found.challenge!r} in its metadata, which is not a challenge of this "
                f"event ({', '.join(challenges)}). {_AGAIN} Fix: copy its cells into the starter notebook of "
                f"{picked} (on this page) and send that.")
    return next((found.syntax for found in checked if found.syntax is not None), None)


def _main(argv: list[str]) -> int:
    limit = int(argv[4])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        found = _check_here(Path(argv[1]).read_bytes(), argv[2], argv[3])
    except MemoryError:
        found = Checked(name=argv[2])
    sys.stdout.write(json.dumps({"problem": found.problem, "challenge": found.challenge, "syntax": found.syntax})
                     + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv))
