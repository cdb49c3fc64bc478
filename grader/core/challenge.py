"""Challenge specifications: ``challenges/<id>/challenge.toml``, validated at load.

A challenge names its dataset, the recorded hidden split, the contract names the notebook must
define, its time limits and its profiles. Unknown keys are errors (``extra="forbid"``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from grader.core.errors import ChallengeError
from grader.core.project import challenge_folder, project_roots

__all__ = [
    "PIN",
    "Challenge",
    "DatasetSpec",
    "EnvironmentSpec",
    "Limits",
    "hard_limit_s",
    "minutes",
    "check_pin",
    "ExecutionSpec",
    "IdxSpec",
    "PreparedView",
    "ProfileSpec",
    "challenge_ids",
    "load_challenge",
]

SCHEMA_VERSION = 1


# a file under challenges/: relative, no part starting with a dot (so no ".."), a .txt name
# (``splits/gear-public.txt``)
_SPLIT_FILE = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*\.txt$"
# a labels-csv dataset's CSV and image folder, relative to its source folder (no part starting with a dot)
_CSV_FILE = r"^[A-Za-z0-9_-][A-Za-z0-9_ .-]*(/[A-Za-z0-9_-][A-Za-z0-9_ .-]*)*\.csv$"
_IMAGE_FOLDER = r"^(\.|[A-Za-z0-9_-][A-Za-z0-9_ .-]*(/[A-Za-z0-9_-][A-Za-z0-9_ .-]*)*)$"



@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run.

    Attributes:
        memory_mb: memory of the whole sandbox (every process, and its tmpfs), in MiB.
        processes: processes and threads the sandbox may hold at once.
        file_mb: largest file any process may write, in MiB.
        tmp_mb: size of the private ``/tmp`` tmpfs (``HOME`` is there), in MiB.
        shm_mb: size of the private ``/dev/shm`` tmpfs (POSIX shared memory: PyTorch's
            ``DataLoader`` workers, ``multiprocessing`` locks and queues), in MiB.
        disk_mb: size of the run's folder (working copy and run files), in MiB; held by a tmpfs
            the grader mounts there when it is root, else not limited.
    """

    memory_mb: int = 8192
    processes: int = 1024
    file_mb: int = 2048
    tmp_mb: int = 1024
    disk_mb: int = 4096
    shm_mb: int = 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PreparedView(_Strict):
    """A derived view of the public data built by the grader, under ``DATA_DIR/<name>/``.

    ``kind = "pad"``: each image scaled to fit ``size`` x ``size`` pixels, keeping its aspect
    ratio, in the centre of a square canvas of ``background`` (the OpenHack gear data-prep step),
    saved as PNG at the same relative path. ``kind = "kaggle"``: the images as Kaggle's CIFAR-10
    competition ships them, ``train/<id>.png`` (ids from 1, in a fixed shuffled order) and
    ``trainLabels.csv`` with columns ``id,label``. ``kind = "kaggle-csv"`` (layout ``idx`` only):
    the images as Kaggle's Fashion-MNIST dataset ships them, one CSV ``fashion-mnist_train.csv``
    with columns ``label,pixel1,...,pixel784`` (integer labels, pixels row-major), in file order.
    """

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    kind: Literal["pad", "kaggle", "kaggle-csv"] = "pad"
    size: int = Field(default=128, gt=0, le=1024)
    background: Literal["white", "black"] = "white"


class AddedClass(_Strict):
    """A class the notebook adds to the dataset's own (the seed's "apple"), with its own split.

    Attributes:
        name: the new class name.
        source: folder under the data directory holding its images (flat).
        hidden: files held back to measure the new class's recall; never shown to the kernel.
        reserved: files in neither part (for example, a photo used among the new images).
    """

    name: str
    source: str
    hidden: list[str] = Field(min_length=1)
    reserved: list[str] = []


class MnistSpec(_Strict):
    """MNIST beside the challenge's own data (seed 001: why an MLP does much worse on CIFAR-10 than on
    MNIST): the notebook may train its MLP on MNIST and define the contract's ``mnist`` function.

    Attributes:
        source: the Keras-style ``.npz`` under the data directory (keys ``x_train``, ``y_train``,
            ``x_test``, ``y_test``; uint8 images of 28 x 28 pixels, integer labels 0-9).
        view: where the view (``DATA_DIR``) holds the public training part, ``x_train`` and
            ``y_train`` only; the 10,000 test images are a second hidden set, kept by the grader
            as grayscale PNGs under neutral names with labels ``"0"`` to ``"9"``.
    """

    source: str = Field(default="mnist/mnist.npz", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*\.npz$")
    view: str = Field(default="mnist/mnist_train.npz", pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*\.npz$")


class IdxSpec(_Strict):
    """Where the idx files of a dataset of layout ``idx`` are, and what they must hold.

    Attributes:
        package: the Debian package that installs the files (named by the missing-data error).
        system_dir: absolute folder tried when ``<data dir>/<source>/`` lacks the files.
        shape: height and width of every image, in pixels.
        train_per_class: images of each class in the training file (the published count).
        test_per_class: images of each class in the test file, the hidden test set.
    """

    package: str = Field(pattern=r"^[a-z0-9][a-z0-9.+-]+$")
    system_dir: str = Field(pattern=r"^/")
    shape: tuple[int, int] = (28, 28)
    train_per_class: int = Field(gt=0)
    test_per_class: int = Field(gt=0)


class DatasetSpec(_Strict):
    """Where the data comes from and which part of it is the hidden test set.

    Attributes:
        source: folder under the data directory.
        layout: ``class-folders`` (``<source>/<class>/<file>``; the hidden test set is the
            recorded ``hidden_split``) or ``train-test-folders``
            (``<source>/{train,test}/<class>/<file>``; the hidden test set is ``test`` less
            ``hidden_exclude``) or ``idx`` (MNIST-style idx files, :mod:`grader.data.idx`; the hidden
            test set is the test file less ``hidden_exclude``, images named
            ``test/<class>/<index>.png``) or ``labels-csv`` (Kaggle's layout, read as it is:
            ``<source>/<images>/<file>`` and a CSV ``<source>/<labels>`` with columns ``id,label``,
            ``id`` the file name with or without its extension, :mod:`grader.data.labelscsv`;
            entries are ``<images>/<file>``; the hidden test set is the recorded ``hidden_split``).
        classes: class names, which are the folder names (a subset is allowed); for ``idx``,
            the name of each integer label in order (``classes[label]``), all of them; for
            ``labels-csv``, labels of the CSV (rows of other labels are left out).
        hidden_split: for ``class-folders`` and ``labels-csv``, a file (relative to
            ``challenges/``) listing the entries (``<class>/<file>``, ``<images>/<file>``) of the
            hidden test set, one a line.
        labels: for ``labels-csv``, the labels CSV, relative to the source folder
            (``trainLabels.csv``).
        images: for ``labels-csv``, the folder of the images, relative to the source folder
            (``train``; ``.`` for the source folder itself).
        public_split: a file (relative to ``challenges/``) listing the hidden test set's public
            part by the images' original identities (``<class>/<file>``, or
            ``test/<class>/<file>``), one a line; the rest is the private part. Made by
            :func:`grader.data.splits.public_split` (``grader data make-split ID``).
            None: no split (the result carries no parts).
        practice_split: a file (relative to ``challenges/``) listing the practice split of the
            *public* data by original identity (``<class>/<file>``, or ``train/<class>/<file>``),
            one a line: what ``grader check --practice`` scores on, so that a team working offline
            with the public data sees a scorecard before it spends a submission; never part of
            the hidden test set. Challenges on the same source share the file (entries of
            classes a challenge lacks are left out). Made by :mod:`grader.data.practice`
            (``grader data make-split ID``). None: no practice split.
        near_duplicate_distance: the largest Hamming distance of 64-bit perceptual hashes at
            which two images of this dataset count as near-duplicates (the same photo), chosen
            by a person looking at pairs (``grader data pairs``; benchmarks/RESULTS.md); images
            with identical pixels always count. ``"identical"``: only those (pHash does not
            tell this dataset's photos apart). No hidden image may be a near-duplicate of a
            public one (:mod:`grader.data.neardup`, checked by ``grader validate``). None: not
            calibrated, identical images only. Challenges on one hidden test set agree on it.
        near_duplicate_pixels: where pHash alone cannot tell the photos apart (Fashion-MNIST:
            one silhouette, many products), a second test for the pairs within
            ``near_duplicate_distance``: their mean absolute difference of 8-bit greyscale
            pixels, both at the same size, is at most this (0 to 255). None: no second test.
        hidden_exclude: for ``train-test-folders`` and ``idx``, a file (relative to
            ``challenges/``) listing test images left out of the hidden test set, by identity
            (``test/<class>/<file>``), one a line: those with a near-duplicate among the public
            images. Made by ``grader data make-split``; challenges on a subset of the classes
            share it (entries of other classes are ignored). None: the whole test side.
        prepared_views: derived views offered beside the raw one.
        extra: folders under the data directory copied as they are into the view (pretrained
            weights, for example ``weights/mobilenet_tflite``).
        raw_view: whether the view holds the public files in their original layout; false when
            the challenge is about reading a prepared layout (Kaggle's CIFAR-10); false for ``idx``.
        idx: for layout ``idx``, where its files are and their published counts.
        mnist: MNIST as a second data set (its training part in the view, its test part a second
            hidden set), or None.
    """

    source: str
    layout: Literal["class-folders", "train-test-folders", "idx", "labels-csv"] = "class-folders"
    classes: list[str] = Field(min_length=2)
    hidden_split: str | None = None
    public_split: str | None = Field(default=None, pattern=_SPLIT_FILE)
    practice_split: str | None = Field(default=None, pattern=_SPLIT_FILE)
    near_duplicate_distance: Annotated[int, Field(ge=0, le=32)] | Literal["identical"] | None = None
    near_duplicate_pixels: float | None = Field(default=None, ge=0, le=255)
    hidden_exclude: str | None = Field(default=None, pattern=_SPLIT_FILE)
    prepared_views: list[PreparedView] = []
    extra: list[str] = []
    raw_view: bool = True
    added_class: AddedClass | None = None
    idx: IdxSpec | None = None
    mnist: MnistSpec | None = None
    labels: str | None = Field(default=None, pattern=_CSV_FILE)
    images: str | None = Field(default=None, pattern=_IMAGE_FOLDER)

    @model_validator(mode="after")
    def _split_matches_layout(self) -> DatasetSpec:
        if (self.layout == "labels-csv") != (self.labels is not None and self.images is not None):
            raise ValueError("layout labels-csv takes labels (the CSV) and images (their folder), both relative to "
                             'the source folder (labels = "trainLabels.csv", images = "train"); other layouts '
                             "take neither")
        if self.layout == "labels-csv" and (not self.hidden_split or self.hidden_exclude):
            raise ValueError("layout labels-csv needs hidden_split (the recorded hidden test set) and takes no "
                             "hidden_exclude")
        csv_views = [v.name for v in self.prepared_views if v.kind == "kaggle-csv"]
        if self.layout == "idx":
            if self.idx is None or self.hidden_split or self.raw_view or self.added_class:
                raise ValueError("layout idx needs a [dataset.idx] table and raw_view = false, and takes "
                                 "no hidden_split (the test file is the hidden test set) or added_class")
            if len(csv_views) != len(self.prepared_views):
                raise ValueError("layout idx offers kaggle-csv prepared views only")
        elif csv_views or self.idx is not None:
            raise ValueError("kaggle-csv views and [dataset.idx] need layout idx")
        if self.layout == "class-folders" and not self.hidden_split:
            raise ValueError("layout class-folders needs hidden_split (the recorded hidden test set)")
        if self.near_duplicate_pixels is not None and not isinstance(self.near_duplicate_distance, int):
            raise ValueError("near_duplicate_pixels tests the pairs within near_duplicate_distance: set that to "
                             "a distance")
        if self.hidden_exclude and self.layout == "class-folders":
            raise ValueError("hidden_exclude is for layouts train-test-folders and idx; a class-folders dataset "
                             "leaves images out of hidden_split itself (grader data make-split)")
        if self.layout == "train-test-folders" and self.hidden_split:
            raise ValueError("layout train-test-folders takes its hidden test set from test/; "
                             "remove hidden_split")
        return self


class ExecutionSpec(_Strict):
    """Time and output limits for one notebook run.

    Attributes:
        cell_timeout_s: longest one cell may run, in seconds.
        deadline_s: wall-clock limit for the kernel's start and the notebook's cells, in seconds;
            the probe's steps have ``probe_timeout_s`` each after it (:func:`hard_limit_s`).
        probe_timeout_s: limit for each step of the probe that calls the contract after the last
            cell (the new images, then the hidden test set), in seconds.
        max_output_bytes: outputs kept per cell; later outputs are dropped with a note.
        probe_batch_size: images per call of ``predict`` when the probe runs it.
        memory_mb: memory of the whole sandbox (processes and its ``/tmp``), in MiB.
        max_processes: processes and threads the sandbox may hold at once.
        max_file_mb: largest file the notebook may write, in MiB.
        tmp_mb: size of the sandbox's private ``/tmp``, in MiB.
        disk_mb: size of the run's working copy and run files, in MiB (a tmpfs when the grader
            is root).
    """

    cell_timeout_s: int = Field(default=900, gt=0)
    deadline_s: int = Field(default=1800, gt=0)
    probe_timeout_s: int = Field(default=600, gt=0)
    max_output_bytes: int = Field(default=2_000_000, gt=0)
    probe_batch_size: int = Field(default=32, gt=0, le=10_000)
    memory_mb: int = Field(default=8192, ge=256)
    max_processes: int = Field(default=1024, ge=16)
    max_file_mb: int = Field(default=2048, ge=1)
    tmp_mb: int = Field(default=1024, ge=16)
    disk_mb: int = Field(default=4096, ge=64)

    def limits(self) -> Limits:
        """These limits as the sandbox takes them."""
        return Limits(memory_mb=self.memory_mb, processes=self.max_processes,
                      file_mb=self.max_file_mb, tmp_mb=self.tmp_mb, disk_mb=self.disk_mb)


class ProfileSpec(_Strict):
    """A named profile passed to the notebook as ``PROFILE``.

    Attributes:
        description: what the profile is for.
        cell_timeout_s: overrides the execution's cell limit for this profile, in seconds (a
            ``full`` profile's training cell runs its whole schedule).
        deadline_s: overrides the execution deadline for this profile, in seconds.
        gpu: its notebooks need a GPU: the event server's workers without one leave them to
            those with one, and Dask sends them only to workers offering the ``GPU`` resource.
    """

    description: str
    cell_timeout_s: int | None = Field(default=None, gt=0)
    deadline_s: int | None = Field(default=None, gt=0)
    gpu: bool = False


class ContractSpec(_Strict):
    """Names the notebook must define (DESIGN.md, "The submission contract")."""

    class_names: str = "CLASS_NAMES"
    predict: str = "predict"
    transfer: str | None = None  # a second, transfer-learning model, where the rubric asks
    imagenet: str | None = None  # a pretrained ImageNet classifier run on the new images
    added: str | None = None  # the model that also knows the dataset's added class
    mlp: str | None = None  # a second model, a multilayer perceptron, where the rubric asks
    # optional: the same MLP trained on MNIST ([dataset.mnist]), called on its test images in mode "L"
    mnist: str | None = None
    # the PIL mode of the images handed to every contract function (the probe converts each to
    # it): "RGB" (default) or "L", 8-bit grayscale (Fashion-MNIST)
    image_mode: Literal["RGB", "L"] = "RGB"


# name==version, as pip takes it: a coach pins what the notebooks get, and the cache key holds it
PIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?==[A-Za-z0-9.+!_-]+$")


def check_pin(text: str) -> str:
    """``text`` if it pins one package (``seaborn==0.13.2``), else ValueError naming the form
    (read by :mod:`grader.core.environment` for ``packages.txt``)."""
    if not PIN.match(text.strip()):
        raise ValueError(f"{text!r} is not a pinned package: write name==version (seaborn==0.13.2)")
    return text.strip()


class EnvironmentSpec(_Strict):
    """Packages the challenge's notebooks import beyond the grader's stack, installed by
    ``setup.sh`` (:mod:`grader.core.environment`).

    Attributes:
        packages: pins, ``name==version`` each (``seaborn==0.13.2``).
    """

    packages: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _pinned(self) -> EnvironmentSpec:
        for pin in self.packages:
            check_pin(pin)
        return self


class VerifySpec(_Strict):
    """How ``grader verify-references`` builds a submission around a reference or a starter.

    Attributes:
        new_images: files copied into the submission's ``new_images/`` folder: a bare name is
            under ``<data dir>/new_images``, a path with a ``/`` is under ``<data dir>``.
    """

    new_images: list[str] = []


class Challenge(_Strict):
    """One challenge level, as loaded from ``challenge.toml``."""

    schema_version: Literal[1]
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    seed: str
    rubric: str
    dataset: DatasetSpec
    contract: ContractSpec = ContractSpec()
    execution: ExecutionSpec = ExecutionSpec()
    profiles: dict[str, ProfileSpec] = {}
    verify: VerifySpec = VerifySpec()
    environment: EnvironmentSpec = EnvironmentSpec()
    # the part of the hidden test set the rubric's threshold criteria decide on: the whole set
    # (default), or its public or private part (needs ``dataset.public_split``)
    verdict_part: Literal["all", "public", "private"] = "all"
    folder: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _verdict_part_has_split(self) -> Challenge:
        if self.verdict_part != "all" and self.dataset.public_split is None:
            raise ValueError(f"verdict_part = {self.verdict_part!r} needs dataset.public_split: "
                             "record one with grader data make-split ID")
        return self

    def needs_gpu(self, profile: str) -> bool:
        """Whether notebooks run with ``profile`` need a GPU (:attr:`ProfileSpec.gpu`)."""
        spec = self.profiles.get(profile)
        return spec is not None and spec.gpu

    def deadline_for(self, profile: str) -> int:
        """Wall-clock deadline in seconds for ``profile`` (its own, else ``[execution]``'s)."""
        spec = self.profiles.get(profile)
        if spec is not None and spec.deadline_s is not None:
            return spec.deadline_s
        return self.execution.deadline_s

    def cell_timeout_for(self, profile: str) -> int:
        """Longest one cell may run under ``profile``, in seconds (its own, else ``[execution]``'s)."""
        spec = self.profiles.get(profile)
        if spec is not None and spec.cell_timeout_s is not None:
            return spec.cell_timeout_s
        return self.execution.cell_timeout_s

    def hard_limit_for(self, profile: str) -> int:
        """When a run under ``profile`` is killed whatever it is doing, in seconds (:func:`hard_limit_s`)."""
        return hard_limit_s(self.deadline_for(profile), self.execution.probe_timeout_s)

    def time_limits(self, profile: str) -> str:
        """The run's time limits under ``profile`` in words, as the starter, the brief and the
        team's page state them: ``each cell 15 min, the whole notebook 25 min``."""
        return (f"each cell {minutes(self.cell_timeout_for(profile))}, "
                f"the whole notebook {minutes(self.deadline_for(profile))}")


RUN_GRACE_S = 60  # beyond the probe's two steps: stopping the last cell, the kernel's start and end


def hard_limit_s(deadline_s: int, probe_timeout_s: int) -> int:
    """When the grader kills a run whatever it is doing, in seconds from its start: the
    notebook's ``deadline_s`` (kernel start and cells, enforced by the runner, which stops the
    running cell there), a restore in a fresh kernel where one is needed, then the probe's two
    steps (the new images, then the hidden test set), each of the three at most
    ``probe_timeout_s``, and ``RUN_GRACE_S``."""
    return deadline_s + 3 * probe_timeout_s + RUN_GRACE_S


def minutes(seconds: int) -> str:
    """``seconds`` in words for a limit: ``25 min``, ``1 h 30 min``, ``45 s``."""
    if seconds < 60:
        return f"{seconds} s"
    hours, mins = divmod(round(seconds / 60), 60)
    if not hours:
        return f"{mins} min"
    return f"{hours} h" + (f" {mins} min" if mins else "")


def challenge_ids(project_dir: Path) -> list[str]:
    """Ids of every challenge folder (one holding ``challenge.toml``) of the project and, where
    its ``grader-project.toml`` includes them, the shipped project (:func:`grader.core.project.project_roots`),
    sorted, each once."""
    ids: set[str] = set()
    for root in project_roots(project_dir):
        folder = root / "challenges"
        if folder.is_dir():
            ids.update(p.name for p in folder.iterdir() if (p / "challenge.toml").is_file())
    return sorted(ids)


def load_challenge(project_dir: Path, challenge_id: str) -> Challenge:
    """Load and validate ``challenges/<challenge_id>/challenge.toml``, from the first project
    folder that holds it (:func:`grader.core.project.challenge_folder`).

    Raises:
        ChallengeError: unknown id (the message lists the known ones), unreadable TOML, unknown
            keys or bad values, or an id that differs from the folder name.
    """
    folder = challenge_folder(project_dir, challenge_id)
    if folder is None:
        known = challenge_ids(project_dir)
        raise ChallengeError(
            f"unknown challenge {challenge_id!r}; known: {', '.join(known) or 'none'}",
            fix="pass one of the known ids (`grader challenges` lists them)",
        )
    path = folder / "challenge.toml"
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ChallengeError(f"cannot read: {err}", path=path) from err
    try:
        challenge = Challenge.model_validate({**raw, "folder": path.parent})
    except ValidationError as err:
        raise ChallengeError(f"invalid challenge file:\n{err}", path=path) from err
    if challenge.id != challenge_id:
        raise ChallengeError(
            f"id {challenge.id!r} differs from its folder name {challenge_id!r}", path=path
        )
    return challenge
