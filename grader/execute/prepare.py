"""Stage 1 of grading a notebook, *prepare*: read it, tell its challenge, make its data ready,
and fill a private working copy with the submission's files and the injected parameters.

Nothing here runs the student's code; what comes out (:class:`Opened`, :class:`WorkingCopy`,
the probe's config) is what :mod:`grader.execute.run` needs to run it, and what
:mod:`grader.score.score` needs to score a notebook that never ran.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from grader.core import Challenge, Settings, UsageError, challenge_ids, load_challenge
from grader.data import (
    HiddenTestSet,
    Listing,
    ensure_added_test_set,
    ensure_hidden_test_set,
    ensure_public_view,
    ingestion_sets,
    is_ingestion_folder,
    list_dataset,
)
from grader.evidence import ExecutionFacts, NewImage
from grader.intake import MalformedNotebook, Submission, challenge_of, copy_submission, inject_parameters, read_notebook

if TYPE_CHECKING:
    from collections.abc import Collection

    from nbformat import NotebookNode

__all__ = ["MODEL_DIR", "NEW_IMAGES", "Opened", "Unknown", "WorkingCopy", "failed_run", "new_images",
           "open_notebook", "prepare_working_copy", "probe_config"]

log = logging.getLogger(__name__)

NEW_IMAGES = "new_images"
MODEL_DIR = "saved_model"
PHASH_MAX_DISTANCE = 4


@dataclass(frozen=True)
class Unknown:
    """A notebook whose challenge cannot be told: none of ``candidates`` fits, or its metadata
    names a challenge (``named``) that does not exist; ``reason`` why it did not read, if so."""

    candidates: list[str]
    reason: str | None = None
    named: str | None = None


@dataclass(frozen=True)
class Opened:
    """A notebook read and matched to its challenge, with that challenge's data ready.

    Attributes:
        notebook: the parsed notebook, or None when it is malformed (``malformed`` says why).
        challenge: the challenge it is graded against (the pipeline loads its rubric).
        listing: the dataset split used (the practice listing for a practice run).
        view: the public data view the notebook gets as ``DATA_DIR``.
        hidden: the hidden test set (or the practice split, for a practice run).
        added: the held-out images of the added class, if the challenge has one.
        mnist: the MNIST test images, if the challenge has ``[dataset.mnist]`` (:mod:`grader.data.mnist`);
            None for a practice run.
        labelled: whether the sets carry their labels; False on an ingestion folder
            (:mod:`grader.data.ingestion`), where the notebook can run but not be scored.
    """

    notebook: NotebookNode | None
    malformed: str | None
    challenge: Challenge
    listing: Listing
    view: Path
    hidden: HiddenTestSet
    added: HiddenTestSet | None
    mnist: HiddenTestSet | None = None
    labelled: bool = True

    @property
    def added_labels(self) -> tuple[str, ...]:
        return self.added.labels if self.added else ()

    @property
    def mnist_labels(self) -> tuple[str, ...]:
        return self.mnist.labels if self.mnist else ()


def open_notebook(path: Path, settings: Settings, *, explicit: str | None,
                  practice: bool = False) -> Opened | Unknown:
    """Read ``path``, tell its challenge (``explicit``: the coach's ``--challenge``) and make the
    challenge's public view and hidden test set ready (cached); ``practice`` uses the practice
    split of the public data as the hidden test set (:func:`grader.data.practice.practice_listing`).

    A malformed notebook still opens (``notebook`` None) when its challenge can be told.

    Raises:
        UsageError: ``explicit`` names no known challenge.
        ConfigError: a challenge or dataset problem.
    """
    known = challenge_ids(settings.project_dir)
    nb, malformed = None, None
    try:
        nb = read_notebook(path)
    except MalformedNotebook as err:
        # what the file is and a fix that can work for that kind (grader.intake.notebook.diagnose)
        fix = f" {err.fix[:1].upper()}{err.fix[1:]}." if err.fix else ""
        malformed = f"{path.name}: {err.reason}.{fix}"
    found = challenge_of(path, nb, known, explicit=explicit)
    if isinstance(found, list):
        return Unknown(found, reason=malformed)
    if found not in known:
        if explicit:  # the coach's option: the CLI checks it before anything runs
            raise UsageError(f"--challenge {explicit}: no such challenge; known: "
                             f"{', '.join(known) or 'none'}", fix="pass one of the known ids")
        # the notebook's own metadata names it: the student's mistake, a failing scorecard
        return Unknown(known, reason=malformed, named=found)
    challenge = load_challenge(settings.project_dir, found)
    if practice:
        from grader.data import practice_hidden_test_set, practice_listing, practice_public_view

        # the data folder may hold only the public data (`grader data export`)
        listing = practice_listing(settings.require_data_dir(), challenge)
        view = practice_public_view(settings, challenge, listing=listing)
        hidden = practice_hidden_test_set(settings, challenge, listing=listing)
        added = None  # the added class's held-out images are hidden: never part of a practice run
    elif is_ingestion_folder(settings.data_dir):  # a worker without the labels (grader.data.ingestion)
        data_dir = settings.require_data_dir()
        listing = list_dataset(data_dir, challenge, public_only=True)
        view = ensure_public_view(settings, challenge, listing=listing, public_only=True)
        sets = ingestion_sets(data_dir, challenge.id)
        return Opened(notebook=nb, malformed=malformed, challenge=challenge, listing=listing,
                      view=view, hidden=sets.hidden, added=sets.added, mnist=sets.mnist, labelled=False)
    else:
        listing = list_dataset(settings.require_data_dir(), challenge)  # listed once, used thrice
        view = ensure_public_view(settings, challenge, listing=listing)
        hidden = ensure_hidden_test_set(settings, challenge, listing=listing)
        added = ensure_added_test_set(settings, challenge)
    from grader.data import ensure_mnist_test_set

    mnist = None if practice else ensure_mnist_test_set(settings, challenge)  # hidden too: not for practice
    return Opened(notebook=nb, malformed=malformed, challenge=challenge,
                  listing=listing, view=view, hidden=hidden, added=added, mnist=mnist)


def failed_run(status: str, message: str) -> ExecutionFacts:
    """The facts of a run that never started: ``status`` (``malformed``, ``too_large``,
    ``copy_failed``, ``cancelled``) and one line for a person."""
    return ExecutionFacts(status=status, message=message, failed_cell=None, cells=(),
                          sources=(), wall_s=0.0, sandboxed=False, probe=None)


@dataclass(frozen=True)
class WorkingCopy:
    """The private copy a notebook runs in.

    Attributes:
        notebook: the notebook with the parameters injected.
        start: the folder its kernel starts in (the notebook's own folder in the copy).
        model_dir: the empty folder passed as ``MODEL_DIR``.
        new_dir: the folder passed as ``NEW_IMAGES_DIR``.
    """

    notebook: NotebookNode
    start: Path
    model_dir: Path
    new_dir: Path


def prepare_working_copy(path: Path, nb: NotebookNode, submission: Submission, workdir: Path, *,
                         view: Path, device: str, profile: str, limit_mb: int) -> WorkingCopy | str:
    """Copy ``submission``'s files into ``workdir`` (at most ``limit_mb`` MB), make an empty
    ``MODEL_DIR`` and a ``NEW_IMAGES_DIR`` (even when the team sent none), and inject the
    parameters into ``nb`` (the notebook at ``path``).

    Returns:
        the working copy, or why the copy failed (one line: the student's fault is data).
    """
    copy_failed = copy_submission(submission, workdir, limit_mb=limit_mb)  # its files only
    if copy_failed is not None:
        return copy_failed
    model_dir = workdir / MODEL_DIR
    shutil.rmtree(model_dir, ignore_errors=True)
    model_dir.mkdir()
    if not (workdir / NEW_IMAGES).exists():  # NEW_IMAGES_DIR exists even when the team sent none
        (workdir / NEW_IMAGES).mkdir()
    # the kernel starts in the notebook's own folder, as Jupyter starts it
    # (team3/code/gear.ipynb reads ../new_images and its own helper files)
    start = workdir / path.relative_to(submission.root).parent
    new_dir = workdir / (submission.new_images.relative_to(submission.root)
                         if submission.new_images else NEW_IMAGES)
    prepared = inject_parameters(nb, {
        "DATA_DIR": str(view), "DEVICE": device, "PROFILE": profile,
        "NEW_IMAGES_DIR": str(new_dir), "MODEL_DIR": str(model_dir),
    })
    return WorkingCopy(notebook=prepared, start=start, model_dir=model_dir, new_dir=new_dir)


def probe_config(challenge: Challenge, hidden: HiddenTestSet, added: HiddenTestSet | None,
                 new_dir: Path, new_files: list[str], *, mnist: HiddenTestSet | None = None,
                 folder_of: Callable[[Path], Path] | None = None) -> dict[str, object]:
    """What the probe is told: contract names, image folders and file names; never labels.
    ``mnist``: the MNIST test images, given to the contract's ``mnist`` function in mode ``L``.
    ``folder_of``: where the probe reads a held-out folder (behind the run's gate,
    :meth:`grader.sandbox.gate.HiddenGate.path_of`); default: the folder itself."""
    contract = challenge.contract
    where = folder_of or (lambda folder: folder)
    extra_sets: dict[str, dict[str, object]] = {}
    if added is not None and contract.added:
        extra_sets["added"] = {"fn": contract.added, "dir": str(where(added.images_dir)), "files": list(added.files)}
    if mnist is not None and contract.mnist:
        extra_sets["mnist"] = {"fn": contract.mnist, "dir": str(where(mnist.images_dir)), "files": list(mnist.files),
                               "image_mode": "L", "optional": True}
    models = {"predict": contract.predict}
    if contract.transfer:
        models["transfer"] = contract.transfer
    if contract.mlp:
        models["mlp"] = contract.mlp
    return {
        "class_names": contract.class_names, "models": models,
        "hidden_dir": str(where(hidden.images_dir)), "hidden_files": list(hidden.files),
        "new_images_dir": str(new_dir), "new_images": new_files,
        "new_image_models": {"imagenet": contract.imagenet} if contract.imagenet else {},
        "extra_sets": extra_sets,
        "batch_size": challenge.execution.probe_batch_size, "image_mode": contract.image_mode,
        "max_label_chars": 200, "max_classes": 1000,
    }


def new_images(folder: Path, files: list[str], hashes: dict[str, str], *,
               hidden: Collection[str] = ()) -> tuple[NewImage, ...]:
    """Decode each of the team's new images (:func:`grader.data.images.decode`: EXIF orientation,
    16-bit, alpha, HEIC; bomb and truncation limits) for its thumbnail and dataset match: a
    dataset image whose pHash (:func:`grader.data.hidden.dataset_hashes`) is within
    ``PHASH_MAX_DISTANCE`` of the new image's, the nearest first (ties: the first entry by name).

    Args:
        folder: the team's ``new_images/`` folder.
        files: the names to decode in it.
        hashes: pHash (hex) of every dataset image, keyed by entry (``<class>/<file>``).
        hidden: the entries of ``hashes`` that are in the hidden test set.

    Returns:
        One row per file, in order: a match with a public entry as ``dataset_match`` (checks
        and the team see it); otherwise a match with a hidden entry as ``hidden_match`` only
        (the coach's: a team told that its image is ``axes/100937.jpeg`` learns that hidden
        image's class). A file that does not decode is its own row with ``error`` set, the
        others are unaffected.
    """
    import imagehash

    from grader.data import decode, thumbnail_uri

    secret = set(hidden)
    sides: dict[bool, list[tuple[str, imagehash.ImageHash]]] = {False: [], True: []}
    for entry, h in sorted(hashes.items()):
        sides[entry in secret].append((entry, imagehash.hex_to_hash(h)))

    def nearest(digest: imagehash.ImageHash, known: list[tuple[str, imagehash.ImageHash]]) -> str | None:
        found = [(digest - h, entry) for entry, h in known if digest - h <= PHASH_MAX_DISTANCE]
        return min(found)[1] if found else None

    out = []
    for name in files:
        decoded = decode(folder / name)
        if decoded.image is None:
            out.append(NewImage(file=name, thumbnail="", dataset_match=None, error=decoded.error))
            continue
        digest = imagehash.phash(decoded.image)
        public = nearest(digest, sides[False])
        out.append(NewImage(file=name, thumbnail=thumbnail_uri(decoded.image), dataset_match=public,
                            hidden_match=None if public is not None else nearest(digest, sides[True])))
    return tuple(out)
