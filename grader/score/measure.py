"""Metrics on the hidden test set, computed by the grader alone with scikit-learn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ClassHits", "ClassRow", "Measurement", "class_hits", "measure"]


@dataclass(frozen=True)
class ClassRow:
    """One class of the per-class table.

    Attributes:
        name: class name.
        support: hidden test images of this class.
        precision: of the images predicted as this class, the share that are (0..1).
        recall: of the images of this class, the share predicted so; this is the per-class
            accuracy (0..1).
    """

    name: str
    support: int
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class Measurement:
    """Accuracy, per-class figures and confusion matrix of one model on the hidden test set.

    Attributes:
        accuracy: share of correct predictions, 0..1.
        n: number of hidden test images.
        classes: class order of ``rows`` and ``confusion``; the dataset's classes, then any
            unknown names the model predicted.
        rows: per-class precision, recall (= per-class accuracy), F1 and support.
        confusion: ``confusion[i][j]`` counts images of class ``classes[i]`` predicted as
            ``classes[j]`` (rows true, columns predicted), ints, shape (C, C).
        unknown_labels: predicted names that are not classes of the challenge.
    """

    accuracy: float
    n: int
    classes: tuple[str, ...]
    rows: tuple[ClassRow, ...]
    confusion: tuple[tuple[int, ...], ...]
    unknown_labels: tuple[str, ...]


@dataclass(frozen=True)
class ClassHits:
    """One class's recall counts on a set of images: ``k`` of its ``n`` images predicted as it."""

    name: str
    k: int
    n: int


def class_hits(labels: Sequence[str], predictions: Sequence[str], classes: Sequence[str],
               chosen: Sequence[bool] | None = None) -> tuple[ClassHits, ...]:
    """Per class of ``classes`` (in that order), how many of its images were predicted as it:
    the counts of its recall (per-class accuracy) over the images where ``chosen`` is true
    (all when None), e.g. one part of the hidden test set.

    Args:
        labels: true class names, length N; ``predictions`` predicted names, length N.
        chosen: per image whether it counts, length N.

    Raises:
        ValueError: when the lengths differ.
    """
    if len(labels) != len(predictions) or (chosen is not None and len(chosen) != len(labels)):
        raise ValueError(f"{len(predictions)} predictions, {len(labels)} labels"
                         + (f", {len(chosen)} flags" if chosen is not None else ""))
    k = dict.fromkeys(classes, 0)
    n = dict.fromkeys(classes, 0)
    for i, (label, predicted) in enumerate(zip(labels, predictions, strict=True)):
        if (chosen is None or chosen[i]) and label in n:
            n[label] += 1
            k[label] += predicted == label
    return tuple(ClassHits(name=c, k=k[c], n=n[c]) for c in classes)


def measure(
    labels: Sequence[str], predictions: Sequence[str], classes: Sequence[str]
) -> Measurement:
    """Score ``predictions`` against ``labels``.

    Args:
        labels: true class names, length N.
        predictions: predicted class names, length N.
        classes: the challenge's class names.

    Raises:
        ValueError: when the lengths differ.

    Method: ``sklearn.metrics.accuracy_score``, ``precision_recall_fscore_support`` (with
    ``zero_division=0``) and ``confusion_matrix`` over a fixed label order.
    """
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    if len(labels) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    unknown = sorted(set(predictions) - set(classes))
    order = [*classes, *unknown]
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=order, zero_division=0
    )
    matrix = confusion_matrix(labels, predictions, labels=order)
    rows = tuple(
        ClassRow(
            name=name,
            support=int(support[i]),
            precision=float(precision[i]),
            recall=float(recall[i]),
            f1=float(f1[i]),
        )
        for i, name in enumerate(order)
        if name in classes
    )
    return Measurement(
        accuracy=float(accuracy_score(labels, predictions)) if labels else 0.0,
        n=len(labels),
        classes=tuple(order),
        rows=rows,
        confusion=tuple(tuple(int(v) for v in row) for row in matrix),
        unknown_labels=tuple(unknown),
    )
