"""A new challenge's brief, ``challenges/<id>/README.md``: the task, the dataset's facts (classes,
images per class, image sizes, file types, where the notebook finds them), the criteria, the
contract and the time limits, in the shape of the shipped briefs (the team's page shows it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from grader.author.findings import Findings
from grader.author.rubric import Criterion
from grader.author.source import Source
from grader.author.splits import Splits
from grader.core import Challenge

__all__ = ["brief_text", "data_layout"]


def data_layout(source: Source) -> str:
    """Where the notebook finds the public images, in words: ``DATA_DIR/fruit/<class>/<file>``."""
    if source.layout == "labels-csv":
        folder = f"DATA_DIR/{source.name}" + ("" if source.images == "." else f"/{source.images}")
        return (f"`{folder}/<file>` (the images) and `DATA_DIR/{source.name}/{source.labels}` (their labels: a CSV "
                "with columns `id,label`, `id` the file name)")
    if source.layout == "train-test-folders":
        return f"`DATA_DIR/{source.name}/train/<class>/<file>` (the test side is the hidden test set)"
    return f"`DATA_DIR/{source.name}/<class>/<file>`"


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]} x {size[1]}"


def _sizes(sizes: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] | None) -> str:
    if sizes is None:
        return ""
    if sizes[0] == sizes[2]:
        return f"Every photo is {_size(sizes[0])} pixels. "
    return f"Sizes run from {_size(sizes[0])} to {_size(sizes[2])} pixels (median {_size(sizes[1])}). "


def brief_text(challenge: Challenge, source: Source, findings: Findings, splits: Splits,
               criteria: Sequence[Criterion]) -> str:
    """The brief of ``challenge``, made from the coach's images.

    Args:
        challenge: the challenge as it will load (title, profiles and their limits).
        source: the coach's images and their classes.
        findings: what the images hold (sizes, formats).
        splits: the hidden test set and practice split chosen.
        criteria: the rubric's criteria.
    """
    labels = dict(source.entries)
    hidden = Counter(labels[e] for e in splits.hidden)
    left_out = set(splits.hidden) | set(splits.excluded)
    public = Counter(c for e, c in source.entries if e not in left_out)
    sizes = findings.size_range()
    formats = ", ".join(f"{name or 'other'} {n}" for name, n in findings.formats.items())
    lines = [
        f"# {challenge.id}: {challenge.title}",
        "",
        f"*A coach's own challenge, made with `grader new-challenge` from the `{source.name}` photos.*",
        "",
        "## The task",
        "",
        f"Teach a model to sort photos into their {len(source.classes)} classes ({', '.join(source.classes)}). "
        "Load the images, prepare them, split off your own validation images, train, and measure how well the "
        "model does before the grader measures it on photos your notebook never sees.",
        "",
        "## The data",
        "",
        f"The notebook finds {sum(public.values())} labelled photos in {data_layout(source)}. "
        + _sizes(sizes) + f"File types, of every photo: {formats}.",
        "",
        f"The hidden test set holds {len(splits.hidden)} more photos, "
        + (f"about {splits.fraction:.0%} of each class, " if splits.fraction is not None else "the test side, ")
        + "held back by the grader: your notebook never sees them or their labels. Shots of one object "
        "(near-duplicates" + (", and the coach's groups" if splits.matched else "") + ") are never split between "
        "the two.",
        "",
        "| class | photos for you | in the hidden test set |",
        "| --- | ---: | ---: |",
        *(f"| {c} | {public[c]} | {hidden[c]} |" for c in source.classes),
        "",
        "## What to build",
        "",
        "1. Read every image with its class (the starter's first cells do it) and split off validation images.",
        "2. Train a classifier and measure its accuracy on your validation images.",
    ]
    ids = {c.id for c in criteria}
    step = 3
    for cid, text in (("loss-history", "Record the average training and validation loss of every epoch in "
                       "`HISTORY = {'loss': [...], 'val_loss': [...]}` and plot both."),
                      ("new-images", "Put at least five photos of your own in `new_images/` beside the notebook and "
                       "show each with its predicted class."),
                      ("transfer-learning", "Build a second model on a pretrained network and expose it as "
                       "`predict_transfer(images)`."),
                      ("saved-model", "Save the best model of training under `MODEL_DIR`.")):
        if cid in ids:
            lines.append(f"{step}. {text}")
            step += 1
    lines += [
        "",
        "## The contract",
        "",
        "Start from `starter.ipynb`. When its last cell has run, the notebook must define `CLASS_NAMES` and "
        "`predict(images)`: RGB PIL images of any size in, one class name per image out, in order; it must prepare "
        "each image exactly as the training images were prepared. Keep the cell tagged `parameters`: the grader "
        "sets `DATA_DIR`, `DEVICE`, `PROFILE`, `NEW_IMAGES_DIR` and `MODEL_DIR` after it.",
        "",
        "## Time limits",
        "",
        "The grader runs the notebook top to bottom: "
        + "; ".join(f"under the `{p}` profile {challenge.time_limits(p)}" for p in challenge.profiles)
        + ". A cell that runs longer is stopped as Jupyter's Stop button stops it; the cells after it still run "
        "while the notebook's time lasts.",
        "",
        "## Success criteria",
        "",
        "| criterion | points | required |",
        "| --- | --- | --- |",
        *(f"| {c.title} | {c.points} | {'yes' if c.required else 'no'} |" for c in criteria),
    ]
    return "\n".join(lines) + "\n"
