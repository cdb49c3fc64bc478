"""Accuracy claims read from printed output, their kind, and the gap to the measured figure."""

from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_output

from grader.evidence.claims import (
    Claim,
    accuracy_claims,
    cell_outputs,
    compare_claim,
    defining_cell,
    notebook_claim,
    read_claims,
)

KERAS2 = ("Epoch 1/10\n"
          " 3/10 [=======>......................] - ETA: 2s - loss: 0.9012 - accuracy: 0.6120\x08\x08\x08\r"
          "10/10 [==============================] - 3s 250ms/step - loss: 0.0213 - accuracy: 0.9931 - "
          "val_loss: 0.3012 - val_accuracy: 0.8891\n")
KERAS3 = ("Epoch 10/10\n"
          "\x1b[1m10/10\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m\x1b[37m\x1b[0m \x1b[1m3s\x1b[0m 250ms/step - "
          "accuracy: 0.9931 - loss: 0.0213 - val_accuracy: 0.8891 - val_loss: 0.3012\n")
# Keras 3.15 in a Jupyter kernel, as captured: fit(epochs=2, validation_split=0.25), evaluate, a print
_BAR = "\x1b[1m{}\x1b[0m \x1b[32m{}\x1b[0m\x1b[37m{}\x1b[0m \x1b[1m{}\x1b[0m {} - "
KERAS3_CAPTURED = (
    "Epoch 1/2\n\r" + _BAR.format("1/6", "━━━", "━" * 17, "6s", "1s/step")
    + "accuracy: 0.6250 - loss: 0.6982" + "\x08" * 69 + "\r" + _BAR.format("6/6", "━" * 20, "", "2s", "105ms/step")
    + "accuracy: 0.4375 - loss: 0.7826 - val_accuracy: 0.4375 - val_loss: 0.7796\n"
    "Epoch 2/2\n\r" + _BAR.format("1/6", "━━━", "━" * 17, "3s", "631ms/step")
    + "accuracy: 0.5000 - loss: 0.7413" + "\x08" * 72 + "\r" + _BAR.format("6/6", "━" * 20, "", "1s", "28ms/step")
    + "accuracy: 0.4375 - loss: 0.7780 - val_accuracy: 0.4375 - val_loss: 0.7756\n"
    "\r" + _BAR.format("1/2", "━" * 10, "━" * 10, "0s", "260ms/step") + "accuracy: 0.4375 - loss: 0.7877"
    + "\x08" * 72 + "\r" + _BAR.format("2/2", "━" * 20, "", "0s", "27ms/step")
    + "accuracy: 0.4375 - loss: 0.7757 \nTest accuracy: 0.4375\n")
TORCH_TUTORIAL = """Accuracy of the network on the 10000 test images: 54 %
Accuracy for class: plane is 57.1 %
Accuracy for class: car   is 72.5 %
"""


@pytest.mark.parametrize(("line", "expected"), [
    ("validation accuracy of the best CNN: 0.946", [0.946]),
    ("Validation set: Average loss: 0.31, Accuracy: 331/360 (92%)", [0.92]),
    ("epoch 3/5: train loss 1.2, validation accuracy 0.751 (40 s)", [0.751]),
    ("Test acc = .9", [0.9]),
    ("Accuracy 93.5 %", [0.935]),
    ("accuracy 0.99\naccuracy 0.5", [0.99, 0.5]),
    ("loss 0.3, no such figure here", []),
    ("accuracy: 250", []),
    ("Accuracy after epoch 10: 0.95", [0.95]),
    ("Accuracy: 47/50 (94%)", [0.94]),
    ("Accuracy: 47/50", [0.94]),
    ("accuracy 0/50", [0.0]),
    ("accuracy, loss: 0.3", []),
    ("Accuracy of the network on the 10000 test images: 54 %", [0.54]),
])
def test_claims(line: str, expected: list[float]) -> None:
    assert accuracy_claims(line) == pytest.approx(expected)


def test_keras_2_progress_lines_tell_training_from_validation() -> None:
    claims = read_claims(KERAS2)
    assert [(c.value, c.kind, c.certain) for c in claims] == [
        (0.612, "training", True), (0.9931, "training", True), (0.8891, "validation", True)]
    assert claims[-1].line.startswith("10/10 [====") and claims[-1].line.endswith("val_accuracy: 0.8891")


def test_keras_3_progress_lines_lose_their_ansi_escapes() -> None:
    claims = read_claims(KERAS3)
    assert claims == [
        Claim(0.9931, claims[0].line, "training", True), Claim(0.8891, claims[0].line, "validation", True)]
    assert claims[0].line == ("10/10 ━━━━━━━━━━━━━━━━━━━━ 3s 250ms/step - accuracy: 0.9931 - loss: 0.0213 - "
                              "val_accuracy: 0.8891 - val_loss: 0.3012")


def test_keras_evaluate_after_fit_is_not_a_training_figure() -> None:
    text = KERAS2 + "313/313 [==============================] - 1s 2ms/step - loss: 0.3 - accuracy: 0.8812\n"
    last = read_claims(text)[-1]
    assert (last.value, last.kind, last.certain) == (0.8812, "unknown", False)


def test_the_keras_coach_solution_is_not_accused() -> None:
    """The training accuracy Keras prints is not compared: its val_accuracy is, and it is fine."""
    for text in (KERAS2, KERAS3):
        check = compare_claim(text, 0.889)
        assert check is not None and check.claim.kind == "validation"
        assert check.claimed == pytest.approx(0.8891) and not check.flagged


@pytest.mark.parametrize(("line", "kind", "certain"), [
    ("Test accuracy: 0.991", "test", True),
    ("accuracy on the test set: 0.97", "test", True),
    ("Validation accuracy 93.1%", "validation", True),
    ("Test set: Average loss: 0.0300, Accuracy: 9900/10000 (99%)", "test", True),
    ("train accuracy 0.99", "training", True),
    ("training acc: 0.99", "training", True),
    ("Epoch 3: train_loss=0.20 train_acc=0.99", "training", True),
    ("Accuracy after epoch 10: 0.95", "unknown", False),
    ("Epoch 3: loss 0.3, val loss 0.4, accuracy 0.9", "unknown", False),
    ("train/test accuracy: 0.99", "unknown", False),
    ("    accuracy                           0.94       424", "unknown", False),
])
def test_claim_kinds(line: str, kind: str, certain: bool) -> None:
    (claim,) = read_claims(line)
    assert (claim.kind, claim.certain, claim.line) == (kind, certain, line.strip())


def test_pytorch_tutorial_compares_the_test_figure_not_a_class() -> None:
    check = compare_claim(TORCH_TUTORIAL, 0.40)
    assert check is not None and check.claimed == 0.54 and check.claim.kind == "test"
    assert check.claim.line == "Accuracy of the network on the 10000 test images: 54 %"
    assert check.flagged
    assert [c.value for c in read_claims(TORCH_TUTORIAL)] == pytest.approx([0.54, 0.571, 0.725])


def test_gap_is_flagged_only_when_the_claim_is_higher() -> None:
    check = compare_claim("epoch 9 test accuracy 0.80\nfinal test accuracy: 0.99", 0.85)
    assert check is not None and check.claimed == 0.99 and check.flagged
    assert check.gap == pytest.approx(0.14)
    modest = compare_claim("test accuracy 0.83", 0.85)
    assert modest is not None and not modest.flagged
    assert compare_claim("nothing claimed", 0.85) is None
    assert compare_claim("test accuracy 0.9", None) is None


def test_an_unsure_claim_is_shown_not_flagged() -> None:
    only_training = compare_claim("train accuracy: 0.99", 0.5)
    assert only_training is not None and only_training.claimed == 0.99
    assert only_training.claim.kind == "training" and not only_training.flagged
    ambiguous = compare_claim("Accuracy after epoch 10: 0.95", 0.5)
    assert ambiguous is not None and ambiguous.claimed == 0.95 and not ambiguous.flagged
    # a held-out figure wins over a later training one
    both = compare_claim("test accuracy: 0.97\ntrain accuracy: 0.99", 0.5)
    assert both is not None and both.claimed == 0.97 and both.flagged


def test_captured_keras_3_fit_evaluate_and_print() -> None:
    assert [(c.value, c.kind, c.certain) for c in read_claims(KERAS3_CAPTURED)] == [
        (0.625, "training", True), (0.4375, "training", True), (0.4375, "validation", True),
        (0.5, "training", True), (0.4375, "training", True), (0.4375, "validation", True),
        (0.4375, "unknown", False), (0.4375, "unknown", False),  # evaluate's progress lines
        (0.4375, "test", True)]
    check = compare_claim(KERAS3_CAPTURED, 0.30)
    assert check is not None and check.claim.line == "Test accuracy: 0.4375" and check.flagged


def test_claim_is_judged_against_the_interval_and_the_margin() -> None:
    """0.934 measured on 424 images (95% interval 0.906-0.954): a test claim of 0.99 is 3.6 points
    above the upper end, inside the 5-point margin; 0.01 of margin flags it. 0.953 measured on 1,000
    (0.938-0.964): a claim of 1.00 is 3.5 points above; 0.870 on 424 (0.834-0.899): 0.96 is flagged."""
    inside = compare_claim("test accuracy: 0.99", 0.934, high=0.954)
    assert inside is not None and not inside.flagged
    assert inside.above_interval == pytest.approx(0.036) and inside.gap == pytest.approx(0.056)
    strict = compare_claim("test accuracy: 0.99", 0.934, high=0.954, margin=0.01)
    assert strict is not None and strict.flagged
    assert not compare_claim("test accuracy: 1.00", 0.953, high=0.964).flagged  # type: ignore[union-attr]
    far = compare_claim("test accuracy: 0.96", 0.870, high=0.899)
    assert far is not None and far.flagged and far.above_interval == pytest.approx(0.061)
    # a training figure is still never flagged, however far above
    assert not compare_claim("train accuracy: 1.00", 0.5, high=0.55).flagged  # type: ignore[union-attr]
    # without an interval the upper end is the measurement itself: the old 5-point rule
    assert compare_claim("test accuracy: 0.91", 0.85).flagged  # type: ignore[union-attr]


def test_defining_cell_finds_the_last_definition_of_predict() -> None:
    sources = ["import torch", "def predict_image(im):\n    ...", "def predict(images):\n    return []",
               "print(predict == other)", "x = 1\npredict = make_predict(model)", "predictor = 3",
               "predict_transfer = lambda ims: []"]
    assert defining_cell(sources, "predict") == 4
    assert defining_cell(sources[:4], "predict") == 2
    assert defining_cell(["async def predict (ims): ..."], "predict") == 0
    assert defining_cell(["predict: Callable = f"], "predict") == 0
    assert defining_cell(["y = predict(images)"], "predict") is None


def _cell(source: str, printed: str = "") -> object:
    cell = new_code_cell(source)
    if printed:
        cell.outputs = [new_output("stream", name="stdout", text=printed)]
    return cell


def test_the_claim_of_the_model_measured_is_read_not_the_last_one() -> None:
    """Rule: the last test/validation claim printed at or before the cell defining predict."""
    cells = [new_markdown_cell("# Gear"), _cell("fit(cnn)", "Epoch 3: val_accuracy: 0.81\n"),
             _cell("evaluate(cnn)", "test accuracy: 0.84\n"),
             _cell("def predict(images):\n    return cnn(images)"),
             _cell("fit(resnet)", "test accuracy: 0.97\n")]  # a second model, not the one graded
    check = notebook_claim(cells, 0.83, high=0.86, margin=0.05, predict="predict")
    assert check is not None and (check.claimed, check.cell, check.flagged) == (0.84, 2, False)
    assert compare_claim(cell_outputs(cells), 0.83).claimed == 0.97  # type: ignore[union-attr]
    # predict defined before any claim (a helper cell at the top): the last claim anywhere
    early = [_cell("def predict(images):\n    return model(images)"), *cells[1:3]]
    check = notebook_claim(early, 0.83, high=0.86, margin=0.05, predict="predict")
    assert check is not None and (check.claimed, check.cell) == (0.84, 2)
    # no held-out claim at all: the last figure of any kind, shown and never flagged
    training = [_cell("fit()", "train accuracy: 0.99\n"), _cell("def predict(ims): ...")]
    check = notebook_claim(training, 0.5, high=0.55, margin=0.05, predict="predict")  # type: ignore[arg-type]
    assert check is not None and (check.claim.kind, check.flagged) == ("training", False)


def test_cell_outputs_reads_streams_and_results_per_cell_within_a_limit() -> None:
    result = new_code_cell("acc")
    result.outputs = [new_output("execute_result", data={"text/plain": "0.93"}, execution_count=1),
                      new_output("display_data", data={"image/png": "iVBOR"})]
    cells = [_cell("print(1)", "test accuracy 0.9\n"), new_markdown_cell("text"), result]
    assert cell_outputs(cells) == ["test accuracy 0.9\n", "", "0.93\n\n"]
    assert cell_outputs(cells, limit=5) == ["test ", "", ""]


def test_a_transfer_learning_claim_is_not_read_as_predicts() -> None:
    """The example team prints its CNN's validation accuracy, then the transfer model's, and
    defines predict in its last cell: the claim beside predict's measurement is the CNN's."""
    cells = ["Epoch 12 validation accuracy: 0.951\n", "Transfer learning validation accuracy: 0.991\n", ""]
    check = compare_claim(cells, 0.948, high=0.965, defined_in=2)
    assert check is not None and (check.claimed, check.cell) == (0.951, 0)
    only = compare_claim(["Transfer learning validation accuracy: 0.991\n"], 0.948, high=0.965)
    assert only is not None and only.claimed == 0.991  # with no other claim, it is still shown
