"""``grader data export``: a challenge's public data, for a coach to hand out and for the event
server to offer as a download.

The export has the layout of the datasets folder, so that ``GRADER_DATA_DIR=DIR grader check
--practice team/`` works offline on it: ``<source>/<entry>`` for every public file
(``gear/axes/1.jpeg``, ``cifar10/train/cat/1.png``), the challenge's ``extra`` folders (pretrained
weights) as they are, the added class's public files (``apples/``), each prepared view the
notebook gets (``gear_128/``, ``cifar10_kaggle/``) and a ``README.txt``. Nothing of the hidden
test set is written: the files come from :attr:`grader.data.splits.Listing.public`, which leaves out the
recorded hidden split (and all of ``test/``), and the added class's hidden and reserved files.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from grader import __version__
from grader.core import (
    Challenge,
    HarnessError,
    Settings,
    UsageError,
    challenge_packages,
    environment_lines,
    load_challenge,
    write_atomic,
)
from grader.data.imagefiles import IMAGE_SUFFIXES
from grader.data.labelscsv import public_csv_text
from grader.data.mnist import write_mnist_view
from grader.data.practice import load_practice_split
from grader.data.splits import added_public, list_dataset
from grader.data.views import ensure_public_view

__all__ = ["ExportSummary", "export_public_data", "public_data_zip"]

Progress = Callable[[int, int], None]
_EVERY = 2000  # files between two progress calls


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote.

    Attributes:
        challenge: the challenge id.
        target: the export folder.
        per_class: public images per class of the source dataset, in the challenge's class order.
        added: public images of the added class (0 without one).
        extra: the extra folders copied.
        views: the prepared views written.
        practice: images of the practice split (None: the challenge records none).
        files: files written, README.txt included.
        bytes: their size in bytes.
    """

    challenge: str
    target: Path
    per_class: tuple[tuple[str, int], ...]
    added: int
    extra: tuple[str, ...]
    views: tuple[str, ...]
    practice: int | None
    files: int
    bytes: int


def export_public_data(settings: Settings, challenge_id: str, target: Path, *, force: bool = False,
                       views: bool = True, on_progress: Progress | None = None) -> ExportSummary:
    """Write the public data of ``challenge_id`` under ``target`` (layout: the module docstring).

    Args:
        settings: the grader's settings; ``data_dir`` is the full datasets folder.
        challenge_id: the challenge.
        target: the export folder; created if missing.
        force: write into a ``target`` that is not empty (files of the same name are replaced,
            others are kept).
        views: also write the prepared views (built once and cached, :func:`grader.data.views.ensure_public_view`;
            padding gear's 1,700 images took 10 s here).
        on_progress: called with ``(files copied, files in all)`` every 2,000 files and at the end.

    Returns:
        What was written.

    Raises:
        UsageError: the challenge's layout is ``idx`` (not ``class-folders``, ``train-test-folders`` or ``labels-csv``);
            ``target`` is a file, or a folder that is not empty and ``force`` is false.
        ChallengeError: unknown challenge. DataError: the data folder is missing or incomplete.
        HarnessError: an entry to write is in the hidden test set (never expected).
    """
    challenge = load_challenge(settings.project_dir, challenge_id)
    ds = challenge.dataset
    data_dir = settings.require_data_dir()
    _exportable(challenge)
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} is a file, not a folder", fix="name a new or empty folder")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise UsageError(f"{target} is not empty", fix="name a new or empty folder, or pass --force to write into it")
    listing = list_dataset(data_dir, challenge)
    hidden = {e for e, _ in listing.hidden}
    leaked = [e for e, _ in listing.public if e in hidden]
    if leaked:
        raise HarnessError(f"public entries in the hidden test set: {', '.join(leaked[:5])}")
    apples = added_public(data_dir, challenge)
    copies = [(data_dir / ds.source / e, Path(ds.source) / e) for e, _ in listing.public]
    if ds.added_class is not None:
        copies += [(data_dir / ds.added_class.source / n, Path(ds.added_class.source) / n) for n in apples]
    for extra in ds.extra:
        copies += [(p, p.relative_to(data_dir)) for p in sorted((data_dir / extra).rglob("*")) if p.is_file()]
    written: list[str] = []
    if views and ds.prepared_views:
        view = ensure_public_view(settings, challenge, listing=listing)
        for v in ds.prepared_views:
            copies += [(p, p.relative_to(view)) for p in sorted((view / v.name).rglob("*")) if p.is_file()]
            written.append(v.name)
    target.mkdir(parents=True, exist_ok=True)
    size = 0
    if ds.mnist is not None:  # MNIST's training part only, under the source's name (grader.data.mnist)
        size += write_mnist_view(target, data_dir, ds.mnist, at=ds.mnist.source).stat().st_size
    for number, (src, rel) in enumerate(copies, 1):
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out)
        size += out.stat().st_size
        if on_progress is not None and (number % _EVERY == 0 or number == len(copies)):
            on_progress(number, len(copies))
    if ds.layout == "labels-csv" and ds.labels is not None:  # the CSV with the public images' rows only
        text = public_csv_text(data_dir, ds, [e for e, _ in listing.public])
        write_atomic(target / ds.source / ds.labels, text)
        size += len(text.encode("utf-8"))
    practice = load_practice_split(challenge)
    counts = Counter(label for _, label in listing.public)
    summary = ExportSummary(challenge=challenge.id, target=target,
                            per_class=tuple((c, counts[c]) for c in ds.classes), added=len(apples),
                            extra=tuple(ds.extra), views=tuple(written),
                            practice=None if practice is None else len(practice),
                            files=len(copies) + 1 + (ds.layout == "labels-csv"), bytes=0)
    readme = readme_text(challenge, summary, packages=challenge_packages(settings.project_dir, challenge))
    write_atomic(target / "README.txt", readme)
    size += len(readme.encode("utf-8"))
    return replace(summary, bytes=size)


def _exportable(challenge: Challenge) -> None:
    """Raise UsageError for a layout whose source files cannot be split into public and hidden
    files (``idx``: one file holds a whole side)."""
    if challenge.dataset.layout not in ("class-folders", "train-test-folders", "labels-csv"):
        raise UsageError(f"{challenge.id}: the {challenge.dataset.layout} layout cannot be exported yet",
                         fix="export a challenge on class-folder or train-test-folder data")


def _layout_words(challenge: Challenge) -> str:
    ds = challenge.dataset
    if ds.layout == "labels-csv":
        return f"  ({ds.images}/<file>, labels in {ds.labels}: id,label)"
    return "  (train/<class>/<file>)" if ds.layout == "train-test-folders" else "  (<class>/<file>)"


def readme_text(challenge: Challenge, summary: ExportSummary, *, packages: Sequence[str] = ()) -> str:
    """The export's ``README.txt``: what it is, the counts per class, that the hidden test set is
    not included, how to run a practice check on it, the time limits of each profile and what a
    notebook can import (:func:`grader.core.environment_lines`, with the coach's ``packages``)."""
    ds = challenge.dataset
    total = sum(n for _, n in summary.per_class)
    lines = [
        f"Public data of the challenge {challenge.id}: {challenge.title}",
        "",
        f"Exported by grader {__version__} (`grader data export {challenge.id} DIR`). This folder has the layout of",
        "the datasets folder: point your notebook's DATA_DIR at it to work offline.",
        "",
        f"  {ds.source}/  {total} public images of {len(summary.per_class)} classes"
        + _layout_words(challenge),
    ]
    lines += [f"      {name:20} {count:6d}" for name, count in summary.per_class]
    if ds.added_class is not None:
        lines.append(f"  {ds.added_class.source}/  {summary.added} images of the added class {ds.added_class.name!r}")
    lines += [f"  {extra}/  copied as it is" for extra in summary.extra]
    lines += [f"  {view}/  a prepared view of the public images, as the grader builds it" for view in summary.views]
    lines += [
        "",
        "The hidden test set is NOT included: the images your notebook is scored on in a real check are",
        "kept by the grader" + (" (all of test/)." if ds.layout == "train-test-folders" else "."),
        "",
        "Practice check, offline, before you spend a submission:",
        "",
        "    GRADER_DATA_DIR=/path/to/this/folder grader check --practice team/ --out out",
        "",
    ]
    if summary.practice is not None:
        lines += [
            f"It scores your notebook on a fixed practice split of these public images ({summary.practice} images,",
            "recorded in the project) and leaves them out of the notebook's DATA_DIR, so the notebook never",
            "trains on them. A practice scorecard is labelled PRACTICE; its figures are not those of the",
            "hidden test set.",
        ]
        if ds.added_class is not None:
            lines.append(f"The added class {ds.added_class.name!r} is not measured by a practice check: its held-out "
                         "images are hidden.")
    else:
        lines.append("This challenge records no practice split: a practice check is refused.")
    lines += ["", "Time limits (the grader stops a cell that runs longer, then goes on; see the brief):"]
    lines += [f"    {profile:6} {challenge.time_limits(profile)}" for profile in challenge.profiles or [""]]
    lines += ["", "What the notebook can import when it is graded (offline: nothing can be installed then):"]
    lines += [f"    {line}" for line in environment_lines(packages)]
    return "\n".join(lines) + "\n"


def _zip_key(settings: Settings, challenge: Challenge) -> str:
    """The content address of a challenge's export: the grader's version, the challenge's
    dataset spec, practice split and every file to export by name and size."""
    ds = challenge.dataset
    data_dir = settings.require_data_dir()
    h = hashlib.sha256(f"{__version__}\n{challenge.id}\n{challenge.title}\n{ds.model_dump_json()}\n".encode())
    # the README's time limits and installed packages
    h.update(challenge.model_dump_json(include={"execution", "profiles", "environment"}).encode())
    h.update(repr(environment_lines(challenge_packages(settings.project_dir, challenge))).encode())
    h.update(repr(load_practice_split(challenge)).encode())
    listing = list_dataset(data_dir, challenge)
    for entry, label in listing.public:
        h.update(f"{entry}\0{(data_dir / ds.source / entry).stat().st_size}\n".encode())
        if ds.layout == "labels-csv":  # a relabelled image changes the exported CSV
            h.update(f"{label}\n".encode())
    h.update(repr(added_public(data_dir, challenge)).encode())
    for extra in ds.extra:
        for p in sorted((data_dir / extra).rglob("*")):
            if p.is_file():
                h.update(f"{p.relative_to(data_dir)}\0{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def public_data_zip(settings: Settings, challenge_id: str, *, on_progress: Progress | None = None) -> Path:
    """A zip of :func:`export_public_data`'s folder (prepared views included), built once and
    cached as ``<cache dir>/exports/<challenge>-<key>.zip`` (``key``: see ``_zip_key``; a changed
    dataset, split or grader gives a new zip). Built in a temporary folder and renamed into
    place, under a lock, so a reader never sees half a zip. Entries are under
    ``<challenge>-public-data/``; images are stored, other files deflated.

    Raises:
        UsageError: the challenge's layout cannot be exported (``idx``).
        ChallengeError: unknown challenge. DataError: the data folder is missing or incomplete.
    """
    challenge = load_challenge(settings.project_dir, challenge_id)
    _exportable(challenge)
    folder = settings.cache_dir / "exports"
    path = folder / f"{challenge.id}-{_zip_key(settings, challenge)}.zip"
    if path.is_file():
        return path
    with _locked(folder):
        if path.is_file():
            return path
        with tempfile.TemporaryDirectory(prefix=f".{challenge.id}.", dir=folder) as tmp:
            top = f"{challenge.id}-public-data"
            export_public_data(settings, challenge.id, Path(tmp) / top, on_progress=on_progress)
            partial = Path(tmp) / "export.zip"
            with zipfile.ZipFile(partial, "w") as zf:
                for file in sorted((Path(tmp) / top).rglob("*")):
                    if file.is_file():
                        stored = file.suffix.lower() in IMAGE_SUFFIXES
                        zf.write(file, file.relative_to(tmp).as_posix(),
                                 compress_type=zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED)
            os.replace(partial, path)
    return path
