"""The files that define a new challenge, as text: ``challenge.toml`` and the recorded splits
(``challenges/splits/<id>-hidden.txt``, ``-public.txt``, ``-practice.txt`` and, for train and test
folders, ``-excluded.txt``) in the formats ``grader data make-split`` writes, each with a header
saying how it was made.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from grader.author.source import Source
from grader.author.splits import Splits
from grader.core import Challenge
from grader.data import Listing, public_split_text

__all__ = ["SplitFiles", "challenge_toml", "split_texts"]


def _q(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True)
class SplitFiles:
    """The split files of challenge ``cid``, relative to ``challenges/``."""

    cid: str

    @property
    def hidden(self) -> str:
        return f"splits/{self.cid}-hidden.txt"

    @property
    def public(self) -> str:
        return f"splits/{self.cid}-public.txt"

    @property
    def practice(self) -> str:
        return f"splits/{self.cid}-practice.txt"

    @property
    def excluded(self) -> str:
        return f"splits/{self.cid}-excluded.txt"


def challenge_toml(*, cid: str, title: str, source: Source, near_distance: int, transfer: bool,
                   new_images: Sequence[str], command: str, new_images_needed: int = 0) -> str:
    """The text of ``challenges/<cid>/challenge.toml`` for ``source``.

    Args:
        cid: the challenge id.
        title: its title.
        source: the coach's images (source folder, layout, classes).
        near_distance: the perceptual-hash distance at which two images count as near-duplicates.
        transfer: the rubric asks for a transfer-learning model (``predict_transfer``).
        new_images: files for ``[verify] new_images`` (paths under the data folder).
        command: the ``grader new-challenge`` command line that made it.
        new_images_needed: the photos the rubric's new-images criterion asks for (0: none); with
            fewer in ``new_images``, a comment says how to add them.
    """
    files = SplitFiles(cid)
    lines = [
        f"# Made by: {command}",
        "# Edit freely: `grader validate --challenge ID` checks it. The split files were chosen by that command;",
        "# `grader data make-split ID` (or that command with --splits-only) chooses them again the same way:",
        "# the recorded seed, --hidden and --group; `make-split --seed N --group RE` to change them.",
        "schema_version = 1",
        f"id = {_q(cid)}",
        f"title = {_q(title)}",
        'seed = "coach"',
        f"rubric = {_q(cid)}",
        "",
        "[dataset]",
        f"source = {_q(source.name)}",
        f'layout = "{source.layout}"',
    ]
    if source.layout == "labels-csv":
        assert source.labels is not None and source.images is not None
        lines += [f"labels = {_q(source.labels)}  # relative to the source folder: columns id,label",
                  f"images = {_q(source.images)}  # the images' folder, relative to the source folder"]
    lines.append("classes = [" + ", ".join(_q(c) for c in source.classes) + "]")
    lines += [
        "# Perceptual-hash distance at which two images count as the same photo (kept on one side of every",
        "# split; no hidden image may have a public twin): look at pairs with `grader data pairs ID DIR` to calibrate.",
        f"near_duplicate_distance = {near_distance}",
    ]
    if source.layout == "train-test-folders":
        lines += ["# Test images left out of the hidden test set: each shares a group with a training image.",
                  f"hidden_exclude = {_q(files.excluded)}"]
    else:
        lines += ["# The hidden test set: stratified, seeded, groups of near-duplicates (and --group) kept whole.",
                  f"hidden_split = {_q(files.hidden)}"]
    lines += [
        "# The public half of the hidden test set (leaderboards during an event; the rest is private).",
        f"public_split = {_q(files.public)}",
        "# The practice split of the public data (`grader check --practice`; never part of the hidden test set).",
        f"practice_split = {_q(files.practice)}",
        "",
        "[execution]",
        "cell_timeout_s = 900",
        "deadline_s = 1800",
        "probe_timeout_s = 600",
        "",
        "[profiles.ci]",
        'description = "2 CPU cores: a short training schedule"',
        "[profiles.full]",
        'description = "a GPU, or a patient CPU: the full training schedule"',
        "cell_timeout_s = 1800",
        "deadline_s = 3600",
    ]
    if transfer:
        lines += ["", "[contract]", 'transfer = "predict_transfer"  # the transfer-learning model the rubric asks for']
    lines += ["", "[verify]", "# new images copied into the submission `grader verify-references` builds (paths",
              "# under the data folder; a bare name is under its new_images/ folder)"]
    if len(new_images) < new_images_needed:
        lines += [f"# The rubric's new-images criterion needs {new_images_needed}: until {new_images_needed} photos "
                  "that are not in the dataset are named", "# here (put them in the data folder's new_images/), "
                  "the reference fails it in `grader verify-references`."]
    lines.append("new_images = [" + ", ".join(_q(n) for n in new_images) + "]")
    return "\n".join(lines) + "\n"


def _header(lines: Sequence[str]) -> str:
    return "".join(f"# {line}\n" for line in lines)


def split_texts(challenge: Challenge, source: Source, splits: Splits, *, near_distance: int, pattern: str | None,
                command: str) -> dict[str, str]:
    """The split files of ``challenge`` (paths relative to ``challenges/``) and their text.

    Raises:
        DataError: never for a sound ``splits`` (:func:`grader.data.public_split_text` is pure).
    """
    files = SplitFiles(challenge.id)
    labels = dict(source.entries)
    ds = challenge.dataset
    form = (f"{ds.images}/<file> (labels in {ds.labels})" if ds.layout == "labels-csv"
            else "train/<class>/<file>" if ds.layout == "train-test-folders" else "<class>/<file>")
    groups = (f"groups of near-duplicates (pHash distance {near_distance}, identical files)"
              + (f" and of --group '{pattern}' ({splits.matched} images matched)" if pattern else "")
              + f": {splits.groups} groups of 2 or more hold {splits.grouped} images")
    out: dict[str, str] = {}
    if splits.fraction is not None:
        out[files.hidden] = _header([
            f"Hidden test set of the {ds.source} dataset: {form} under GRADER_DATA_DIR/{ds.source}, one a line.",
            f"Made by `{command}`",
            f"(grader.data.splitmake.grouped_split: {splits.fraction:g} of each class, seed {splits.seed},",
            f"over {groups}, each wholly hidden or wholly public).",
            "Running it again on the same data gives this same file.",
        ]) + "".join(f"{e}\n" for e in splits.hidden)
    else:
        out[files.excluded] = _header([
            f"Test images of the {ds.source} dataset left out of the hidden test set: each shares a group with a",
            f"training image ({groups}). {len(splits.excluded)} of the "
            f"{len(splits.excluded) + len(splits.hidden)} test images.",
            f"Made by `{command}`; running it again on the same data gives this same file.",
        ]) + "".join(f"{e}\n" for e in splits.excluded)
    hidden = tuple((e, labels[e]) for e in splits.hidden)
    out[files.public] = public_split_text(challenge, Listing(public=(), hidden=hidden))
    public_count = len(source.entries) - len(splits.hidden) - len(splits.excluded)
    out[files.practice] = _header([
        f"Practice split of the public data of {ds.source!r} ({len(ds.classes)} classes): {len(splits.practice)} of "
        f"its {public_count} public images,",
        f"by original identity under GRADER_DATA_DIR/{ds.source}, one a line; never part of the hidden test set.",
        "`grader check --practice` scores on these and leaves them out of the notebook's DATA_DIR.",
        f"Made by `{command}` (grader.data.splitmake.grouped_split: {splits.practice_fraction:.4g} of each class,",
        f"seed {splits.seed + 1}, the same groups kept whole); running it again gives this same file.",
    ]) + "".join(f"{e}\n" for e in splits.practice)
    return out
