"""A new challenge's rubric, from the criteria the coach picks, in the registered checks' own names
and parameters (``grader checks`` lists them): the same criteria the shipped rubrics use.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from grader.core import UsageError

__all__ = ["CRITERIA", "DEFAULT_CRITERIA", "NEW_IMAGES_NEEDED", "Criterion", "parse_criteria", "rubric_criteria",
           "rubric_toml"]

CRITERIA = ("accuracy", "loss-curves", "per-class", "new-images", "transfer-learning", "saved-model")
DEFAULT_CRITERIA = ("accuracy", "loss-curves", "per-class", "new-images", "saved-model")
NEW_IMAGES_NEEDED = 5  # the new-images criterion's min_images: the photos a submission (a reference too) needs


@dataclass(frozen=True)
class Criterion:
    """One criterion of the rubric to write: its id, title, check, points, whether it is required,
    its parameters, its fix and the framework-specific fixes."""

    id: str
    title: str
    check: str
    points: int
    params: dict[str, object]
    fix: str
    required: bool = True
    fixes: tuple[tuple[str, str], ...] = ()


def parse_criteria(text: str) -> tuple[str, ...]:
    """The criteria named in ``--criteria`` (comma-separated), in :data:`CRITERIA`'s order.

    Raises:
        UsageError: an unknown name (the message lists the known ones), or none at all.
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CRITERIA]
    if unknown or not names:
        raise UsageError(f"--criteria {text!r}: " + (f"unknown {', '.join(unknown)}" if unknown else "none named"),
                         fix=f"name some of {','.join(CRITERIA)}")
    return tuple(c for c in CRITERIA if c in names)


def rubric_criteria(criteria: Sequence[str], *, threshold: float) -> list[Criterion]:
    """The rubric's criteria for the picked ``criteria``: always ``runs`` first.

    Args:
        criteria: names from :data:`CRITERIA`.
        threshold: the accuracy the hidden test set must show (and the transfer-learning model's).
    """
    out = [Criterion("runs", "The notebook runs top to bottom and defines the contract", "notebook_runs", 1, {},
                     "Restart the kernel and run all cells; fix the first cell that fails. Define CLASS_NAMES and "
                     "predict(images).")]
    if "accuracy" in criteria:
        out.append(Criterion(
            "accuracy", f"Accuracy of predict on the hidden test set is {threshold:.2f} or more", "hidden_accuracy", 4,
            {"model": "predict", "threshold": threshold},
            "Train longer, augment the training images or try another model; check that predict prepares each "
            "image exactly as the training images were prepared."))
    if "loss-curves" in criteria:
        out += [
            Criterion("loss-history", "Average training and validation loss recorded for each epoch", "loss_history",
                      1, {"min_epochs": 2}, "Append the mean training loss and the mean validation loss of every "
                      "epoch to HISTORY = {'loss': [...], 'val_loss': [...]}.",
                      fixes=(("tensorflow", "Pass validation_data to model.fit and keep the History it returns: "
                              "HISTORY = model.fit(..., validation_data=(x_val, y_val))."),)),
            Criterion("loss-plot", "Training and validation loss plotted", "loss_plot", 1, {},
                      "Plot both loss lists with matplotlib (plt.plot(HISTORY['loss']); "
                      "plt.plot(HISTORY['val_loss']); plt.show())."),
        ]
    if "per-class" in criteria:
        out.append(Criterion(
            "per-class", "Every class recognised: per-class recall of 0.50 or more on the hidden test set",
            "per_class_report", 1, {"min_recall": 0.5},
            "The confusion matrix on the scorecard shows which classes are confused; small classes need class "
            "weights, augmentation or more examples.", required=False))
    if "new-images" in criteria:
        out.append(Criterion(
            "new-images", "At least five new images: the notebook shows each one's predicted class, and predict "
            "classifies them when the grader calls it", "new_image_predictions", 1,
            {"min_images": NEW_IMAGES_NEEDED, "shown": True},
            "Put at least five photos that are not in the dataset into new_images/ beside the notebook, and show "
            "each with its predicted class and file name (plt.imshow(image); plt.title(f'{label} {file}'))."))
    if "transfer-learning" in criteria:
        out.append(Criterion(
            "transfer-learning", f"A transfer-learning model on a pretrained network (predict_transfer) reaches "
            f"{threshold:.2f}", "transfer_learning", 2, {"threshold": threshold},
            "Build a classifier on the features of a pretrained network and expose it as predict_transfer(images).",
            fixes=(("pytorch", "Build a classifier on the features of a pretrained network (a torchvision or "
                    "EfficientNet-Lite model with its weights, a new last layer) and expose it as "
                    "predict_transfer(images)."),
                   ("tensorflow", "Build a classifier on the features of a pretrained network (keras.applications "
                    "with weights, a new Dense layer) and expose it as predict_transfer(images)."))))
    if "saved-model" in criteria:
        out.append(Criterion(
            "saved-model", "The best model is saved under MODEL_DIR", "saved_model", 1, {"min_bytes": 1024},
            "Save the best model of training to MODEL_DIR with your framework's own call "
            "(torch.save(model.state_dict(), ...), model.save(...), joblib.dump(model, ...)).",
            fixes=(("pytorch", "Save the best model to MODEL_DIR, e.g. torch.save(model.state_dict(), "
                    "os.path.join(MODEL_DIR, 'best.pt'))."),
                   ("tensorflow", "Save the best model to MODEL_DIR, e.g. model.save(os.path.join(MODEL_DIR, "
                    "'best.keras'))."),
                   ("sklearn", "Save the model to MODEL_DIR, e.g. joblib.dump(model, os.path.join(MODEL_DIR, "
                    "'model.joblib'))."))))
    return out


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def rubric_toml(cid: str, criteria: Sequence[Criterion], *, command: str) -> str:
    """The text of ``rubrics/<cid>.toml``."""
    lines = [f"# Rubric of challenge {cid}. Made by: {command}",
             "# Edit freely (points, titles, fixes, thresholds): `grader checks` lists every check and its parameters.",
             "schema_version = 1", f"challenge = {json.dumps(cid)}"]
    for c in criteria:
        lines += ["", "[[criteria]]", f"id = {json.dumps(c.id)}", f"title = {_value(c.title)}",
                  f"check = {json.dumps(c.check)}", f"points = {c.points}"]
        if not c.required:
            lines.append("required = false")
        if c.params:
            lines.append("params = { " + ", ".join(f"{k} = {_value(v)}" for k, v in c.params.items()) + " }")
        lines.append(f"fix = {_value(c.fix)}")
        if c.fixes:
            lines += ["[criteria.fixes]", *(f"{k} = {_value(v)}" for k, v in c.fixes)]
    return "\n".join(lines) + "\n"
