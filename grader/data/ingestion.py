"""The ingestion/scoring split: a data folder that lets a worker execute notebooks without the
hidden labels.

A worker on a machine the coach trusts less (a lab's GPU box, a cloud node) runs the students'
notebooks and the probe, and returns the probe's predictions; the labels, and the scoring, stay
where the coach's full datasets are (Codabench's ingestion and scoring programs, Pavao et al.,
"CodaLab Competitions: An Open Source Platform to Organize Scientific Challenges", JMLR 24,
2023). ``grader data export --ingestion CHALLENGE DIR`` writes such a folder: the challenge's
public data (:func:`grader.data.export.export_public_data`) plus, under ``ingestion/``, each hidden
set the probe predicts on (the hidden test set, the added class's held-out images, MNIST's test
images) as the grader shows it to a kernel: neutral names (``00000.jpeg``) in the grader's fixed
shuffled order, no class folder, no label. ``ingestion.json`` at the folder's root names them:

    {"format": 1, "challenges": {"gear-cnn": {"hidden": {"id": "gear-<digest>",
     "dir": "ingestion/gear-<digest>", "files": ["00000.jpeg", ...]}, "added": null, "mnist": null}}}

A set's ``id`` is the name of the grader's own cached copy of it (``<source>-<digest of the
entries in order>``), so the scorer can tell that the predictions it gets are for the images,
in the order, it holds the labels of (:func:`check_sets`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from grader.core import ConfigError, DataError, HarnessError, Settings, load_challenge, write_atomic
from grader.data.export import export_public_data
from grader.data.hidden import ensure_added_test_set, ensure_hidden_test_set
from grader.data.mnist import ensure_mnist_test_set
from grader.data.store import HiddenTestSet

__all__ = ["MANIFEST", "FOLDER", "IngestionSets", "check_sets", "export_ingestion", "ingestion_sets",
           "is_ingestion_folder", "set_ids"]

MANIFEST = "ingestion.json"
FOLDER = "ingestion"
FORMAT = 1
SET_NAMES = ("hidden", "added", "mnist")


@dataclass(frozen=True)
class IngestionSets:
    """The sets a worker predicts on for one challenge, without labels (``labels`` empty).

    Attributes:
        hidden: the hidden test set's images.
        added: the added class's held-out images, or None.
        mnist: MNIST's test images, or None.
    """

    hidden: HiddenTestSet
    added: HiddenTestSet | None
    mnist: HiddenTestSet | None


def is_ingestion_folder(data_dir: Path | None) -> bool:
    """Whether ``data_dir`` is an ingestion folder (it holds ``ingestion.json``)."""
    return data_dir is not None and (data_dir / MANIFEST).is_file()


def _read_manifest(data_dir: Path) -> dict[str, object]:
    path = data_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read the ingestion manifest: {err}", path=path,
                        fix="write the folder again with grader data export --ingestion") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not isinstance(
            manifest.get("challenges"), dict):
        raise DataError(f"not an ingestion manifest of format {FORMAT}", path=path,
                        fix="write the folder again with this grader's grader data export --ingestion")
    return manifest


def ingestion_sets(data_dir: Path, challenge_id: str) -> IngestionSets:
    """The unlabelled sets of ``challenge_id`` in the ingestion folder ``data_dir``.

    Raises:
        DataError: the manifest cannot be read, does not list the challenge, or a set's folder
            lacks one of its files.
    """
    manifest = _read_manifest(data_dir)
    challenges = manifest["challenges"]
    assert isinstance(challenges, dict)
    entry = challenges.get(challenge_id)
    if not isinstance(entry, dict):
        raise DataError(f"this ingestion folder holds no hidden images of {challenge_id} "
                        f"(it has {', '.join(sorted(challenges)) or 'none'})", path=data_dir / MANIFEST,
                        fix=f"add them: grader data export --ingestion {challenge_id} {data_dir} --force, "
                        "on the machine with the full datasets")

    def one(name: str) -> HiddenTestSet | None:
        spec = entry.get(name)
        if spec is None:
            return None
        folder = data_dir / str(spec["dir"])
        if folder.name != spec["id"]:
            raise DataError(f"the {name} set of {challenge_id} names folder {spec['dir']} for images {spec['id']}",
                            path=data_dir / MANIFEST, fix="write the folder again with grader data export --ingestion")
        files = tuple(str(f) for f in spec["files"])
        missing = [f for f in files if not (folder / f).is_file()]
        if missing:
            raise DataError(f"{len(missing)} images of the {name} set of {challenge_id} are missing, e.g. "
                            f"{', '.join(missing[:3])}", path=folder,
                            fix="write the folder again with grader data export --ingestion")
        return HiddenTestSet(images_dir=folder, files=files, labels=())

    hidden = one("hidden")
    if hidden is None:
        raise DataError(f"the ingestion manifest lists no hidden test set for {challenge_id}",
                        path=data_dir / MANIFEST, fix="write the folder again with grader data export --ingestion")
    return IngestionSets(hidden=hidden, added=one("added"), mnist=one("mnist"))


def set_ids(hidden: HiddenTestSet, added: HiddenTestSet | None,
            mnist: HiddenTestSet | None) -> dict[str, str]:
    """``{set name: id}`` of the sets a run predicts on: each id the name of its images folder
    (the grader's cache, or the ingestion folder's copy of it, named the same)."""
    sets = {"hidden": hidden, "added": added, "mnist": mnist}
    return {name: s.images_dir.name for name, s in sets.items() if s is not None}


def check_sets(executed: Mapping[str, str], scoring: Mapping[str, str], *, notebook: str) -> None:
    """Check that a run predicted on the sets the scorer holds the labels of.

    Args:
        executed: :func:`set_ids` of the run (on the worker).
        scoring: :func:`set_ids` of the scorer's sets.
        notebook: the notebook's name, for the message.

    Raises:
        HarnessError: they differ: the worker's ingestion folder is from another dataset or
            grader version (never the student's fault).
    """
    if dict(executed) != dict(scoring):
        raise HarnessError(
            f"{notebook} ran on hidden images {dict(executed)} but the labels here are for {dict(scoring)}: "
            "the worker's ingestion folder is out of date; write it again with grader data export --ingestion "
            "and copy it to the worker")


def export_ingestion(settings: Settings, challenge_id: str, target: Path, *, force: bool = False,
                     views: bool = True) -> tuple[int, int]:
    """Write an ingestion folder for ``challenge_id`` under ``target``: the public data
    (:func:`grader.data.export.export_public_data`) and the challenge's unlabelled sets, listed in
    ``ingestion.json`` beside the other challenges already there.

    Args:
        settings: the grader's settings; ``data_dir`` is the full datasets folder.
        challenge_id: the challenge.
        target: the folder; created if missing.
        force: write into a ``target`` that is not empty (to add a challenge).
        views: also write the prepared views.

    Returns:
        ``(images written, bytes written)`` of the unlabelled sets.

    Raises:
        UsageError: as :func:`grader.data.export.export_public_data` (a folder not empty without
            ``force``, a layout it cannot export).
        ConfigError: ``settings.data_dir`` is itself an ingestion folder.
        DataError: the data folder is missing or incomplete.
    """
    data_dir = settings.require_data_dir()
    if is_ingestion_folder(data_dir):
        raise ConfigError("the data folder is an ingestion folder: it holds no labels to make one from",
                          path=data_dir, fix="point GRADER_DATA_DIR at the full datasets")
    challenge = load_challenge(settings.project_dir, challenge_id)
    export_public_data(settings, challenge_id, target, force=force, views=views)
    sets = {"hidden": ensure_hidden_test_set(settings, challenge), "added": ensure_added_test_set(settings, challenge),
            "mnist": ensure_mnist_test_set(settings, challenge)}
    manifest = _read_manifest(target) if is_ingestion_folder(target) else {"format": FORMAT, "challenges": {}}
    entry: dict[str, object] = {}
    images = size = 0
    for name, found in sets.items():
        if found is None:
            entry[name] = None
            continue
        rel = f"{FOLDER}/{found.images_dir.name}"
        out = target / rel
        if not (out / ".complete").is_file():
            tmp = target / FOLDER / f".{found.images_dir.name}.{os.getpid()}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            for file in found.files:
                shutil.copyfile(found.images_dir / file, tmp / file)
            (tmp / ".complete").write_text("")
            shutil.rmtree(out, ignore_errors=True)
            os.replace(tmp, out)
        images += len(found.files)
        size += sum((out / f).stat().st_size for f in found.files)
        entry[name] = {"id": found.images_dir.name, "dir": rel, "files": list(found.files)}
    challenges = manifest["challenges"]
    assert isinstance(challenges, dict)
    challenges[challenge_id] = entry
    write_atomic(target / MANIFEST, json.dumps(manifest, indent=1))
    with (target / "README.txt").open("a", encoding="utf-8") as readme:
        readme.write(f"\nThis is an ingestion folder: {FOLDER}/ also holds the images of the hidden sets of "
                     f"{', '.join(sorted(challenges))}, under neutral names and without labels, for grading "
                     "workers that only execute notebooks (grader data export --ingestion). Do not hand it out: "
                     "students must not see the hidden images.\n")
    return images, size
