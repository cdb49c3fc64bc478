"""New images as phones and editors save them: one conversion on both sides of the trust boundary,
unreadable files flagged on their own rows, and the new-images criterion saying what happened."""

from __future__ import annotations

import base64
import dataclasses
import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile

from grader.core.challenge import load_challenge
from grader.core.settings import Settings
from grader.data.imagefiles import list_images
from grader.data.images import MAX_PIXELS, decode, register_heif, to_rgb
from grader.evidence.records import (
    CellRecord,
    Evidence,
    ExecutionFacts,
    NewImage,
    NewImagesRun,
    ProbeFacts,
    ProbeOutput,
)
from grader.execute.prepare import new_images as _new_images
from grader.intake.submissions import discover
from grader.pipeline.grade import GradeOptions, grade_submission
from grader.score.checks import get_check
from tests.conftest import REPO
from tests.support.toy import GOOD_TOY_CELLS, write_submission

PROBE_SOURCE = (REPO / "grader" / "student" / "kernel" / "probe.py").read_text()


def probe_functions() -> dict[str, Any]:
    """The probe's own functions, defined from its source as the kernel defines them."""
    namespace: dict[str, Any] = {}
    exec(compile(PROBE_SOURCE, "probe.py", "exec"), namespace)
    return namespace


PROBE = probe_functions()


def _gradient(size: tuple[int, int] = (40, 30)) -> np.ndarray:
    x = np.linspace(0, 1, size[0])[None, :] * np.linspace(0.2, 1, size[1])[:, None]
    return x


def _png_with_size(path: Path, width: int, height: int) -> None:
    """A 1x1 PNG whose IHDR claims ``width`` x ``height`` (a decompression bomb's header)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = data[12:29]  # b"IHDR" + 13 bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def image_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file per mode and format a team's photos come in."""
    root = tmp_path_factory.mktemp("images")
    g = _gradient()
    rgb = Image.fromarray((np.stack([g, g[::-1], 1 - g], -1) * 255).astype(np.uint8))
    files: dict[str, Path] = {}

    def save(name: str, image: Image.Image, **options: Any) -> None:
        files[name] = root / name
        image.save(root / name, **options)

    save("photo.JPG", rgb, format="JPEG")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to show
    save("rotated.jpeg", rgb, format="JPEG", exif=exif.tobytes())
    save("cmyk.jpg", rgb.convert("CMYK"), format="JPEG")
    save("grey16.PNG", Image.fromarray((g * 65535).astype(np.uint16)), format="PNG")
    save("big-endian16.tif", Image.fromarray((g * 65535).astype(np.uint16)).convert("I").convert("I;16B"),
         format="TIFF")
    save("int32.tif", Image.fromarray((g * 65535).astype(np.int32)), format="TIFF")
    save("float.tif", Image.fromarray(g.astype(np.float32)), format="TIFF")
    save("palette.png", rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16))
    transparent = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    transparent.info["transparency"] = 0
    save("palette-alpha.png", transparent, transparency=0)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray((g * 255).astype(np.uint8)))
    save("alpha.png", rgba)
    save("grey-alpha.png", rgba.convert("LA"))
    save("photo.WEBP", rgb, format="WEBP", lossless=True)
    frames = [rgb, Image.new("RGB", rgb.size, (0, 255, 0))]
    save("anim.GIF", frames[0], format="GIF", save_all=True, append_images=frames[1:])
    if register_heif():
        save("phone.HEIC", rgb, format="HEIF")
    whole = io.BytesIO()
    rgb.resize((200, 150)).save(whole, format="JPEG")
    files["truncated.jpg"] = root / "truncated.jpg"
    files["truncated.jpg"].write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    files["notes.jpg"] = root / "notes.jpg"
    files["notes.jpg"].write_text("not an image")
    files["bomb.png"] = root / "bomb.png"
    _png_with_size(files["bomb.png"], 30_000, 30_000)  # over twice the limit: Pillow's error
    files["bomb-warning.png"] = root / "bomb-warning.png"
    _png_with_size(files["bomb-warning.png"], 10_000, 10_000)  # over the limit: Pillow's warning
    return files


def test_probe_and_grader_decode_every_file_to_the_same_pixels(image_files: dict[str, Path]) -> None:
    for name, path in image_files.items():
        ours = decode(path)
        image, error = PROBE["_grader_image_rgb"](str(path))
        assert ours.error == error, name
        if error is None:
            assert ours.image is not None and ours.image.mode == image.mode == "RGB", name
            assert (ours.image.size, ours.image.tobytes()) == (image.size, image.tobytes()), name


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "RGBa", "LA", "La", "PA", "CMYK", "YCbCr",
                                  "I", "I;16", "I;16B", "I;16L", "F"])
def test_probe_and_grader_convert_every_mode_alike(mode: str) -> None:
    g = _gradient((16, 12))
    base = Image.fromarray((np.stack([g, g[::-1], 1 - g, g], -1) * 255).astype(np.uint8), "RGBA")
    if mode in ("I", "I;16", "I;16B", "I;16L"):
        image = Image.fromarray((g * 65535).astype(np.int32)).convert(mode)
    elif mode == "F":
        image = Image.fromarray((g * 60000).astype(np.float32))
    else:
        image = base.convert(mode)
    ours, theirs = to_rgb(image), PROBE["_grader_to_rgb"](image)
    assert ours.mode == theirs.mode == "RGB"
    assert ours.tobytes() == theirs.tobytes()


def test_sixteen_bit_is_scaled_not_clipped(image_files: dict[str, Path]) -> None:
    for name in ("grey16.PNG", "big-endian16.tif", "int32.tif", "float.tif"):
        image = decode(image_files[name]).image
        assert image is not None, name
        assert image.convert("L").getextrema() == (0, 255), name  # the full range, scaled
        # the middle of the gradient is grey, not white (convert("RGB") clips 16-bit to 255)
        middle = np.asarray(image)[15, 20, 0]
        assert 40 < middle < 200, (name, middle)
    assert decode(image_files["grey16.PNG"]).image.getpixel((39, 29)) == (255, 255, 255)  # type: ignore[union-attr]


def test_exif_orientation_and_alpha_and_first_frames(image_files: dict[str, Path]) -> None:
    upright = decode(image_files["rotated.jpeg"]).image
    assert upright is not None and upright.size == (30, 40)  # stored 40x30, shown turned
    alpha = decode(image_files["alpha.png"]).image
    assert alpha is not None and alpha.getpixel((0, 0)) == (255, 255, 255)  # transparent corner: white
    assert decode(image_files["palette-alpha.png"]).image is not None
    gif = decode(image_files["anim.GIF"]).image
    assert gif is not None and gif.getpixel((20, 15)) != (0, 255, 0)  # the first frame, not the green one
    assert decode(image_files["cmyk.jpg"]).image is not None
    if "phone.HEIC" in image_files:
        heic = decode(image_files["phone.HEIC"]).image
        assert heic is not None and heic.size == (40, 30)


def test_bad_files_are_reasons_not_exceptions(image_files: dict[str, Path], tmp_path: Path) -> None:
    assert decode(image_files["truncated.jpg"]).error == "truncated"
    assert decode(image_files["notes.jpg"]).error == "not an image Pillow can read"
    assert decode(image_files["bomb.png"]).error == f"oversized: over the {MAX_PIXELS:,}-pixel limit"
    assert decode(image_files["bomb-warning.png"]).error == f"oversized: over the {MAX_PIXELS:,}-pixel limit"
    link = tmp_path / "link.jpg"
    link.symlink_to(image_files["photo.JPG"])
    assert decode(link).error == "is a symbolic link; put the image itself in new_images/"


def test_what_the_kernel_set_does_not_loosen_the_limits(image_files: dict[str, Path]) -> None:
    before = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
    ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = True, None
    try:
        assert decode(image_files["truncated.jpg"]).error == "truncated"
        assert PROBE["_grader_image_rgb"](str(image_files["truncated.jpg"])) == (None, "truncated")
        assert PROBE["_grader_image_rgb"](str(image_files["bomb.png"]))[1] == (
            f"oversized: over the {MAX_PIXELS:,}-pixel limit")
        assert decode(image_files["bomb-warning.png"]).error == f"oversized: over the {MAX_PIXELS:,}-pixel limit"
        assert (ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS) == (True, None)  # restored
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = before


def test_list_images_takes_phone_names_and_leaves_hidden_files(tmp_path: Path) -> None:
    for name in ("IMG_0002.JPG", "b.jpeg", "c.PNG", "d.HEIC", "e.WebP", "._IMG_0002.JPG", ".DS_Store",
                 "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "folder.jpg").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["IMG_0002.JPG", "b.jpeg", "c.PNG", "d.HEIC", "e.WebP"]


def test_new_image_rows_flag_each_unreadable_file(image_files: dict[str, Path], tmp_path: Path) -> None:
    names = ["rotated.jpeg", "truncated.jpg", "photo.JPG"]
    for name in names:
        (tmp_path / name).write_bytes(image_files[name].read_bytes())
    rows = _new_images(tmp_path, names, {})
    assert [(r.file, r.error) for r in rows] == [
        ("rotated.jpeg", None), ("truncated.jpg", "truncated"), ("photo.JPG", None)]
    thumb = Image.open(io.BytesIO(base64.b64decode(rows[0].thumbnail.split(",", 1)[1])))
    assert thumb.size == (30, 40)  # the thumbnail stands as the photo was taken
    assert rows[1].thumbnail == ""


def test_probe_wire_is_validated() -> None:
    with pytest.raises(ValueError, match="2 predictions for 1 files"):
        NewImagesRun.model_validate({"files": ["a.jpg"], "predictions": ["x", "y"]})
    with pytest.raises(ValueError, match="both read and unreadable"):
        NewImagesRun.model_validate({"files": ["a.jpg"], "predictions": ["x"],
                                     "unreadable": [{"file": "a.jpg", "error": "truncated"}]})
    with pytest.raises(ValueError, match="a file twice"):
        NewImagesRun.model_validate({"files": ["a.jpg", "a.jpg"]})


CHALLENGE = load_challenge(REPO, "gear-cnn")


def _evidence(*, new_images: tuple[NewImage, ...], probe: dict[str, Any] | None, status: str = "ok",
              message: str = "") -> Evidence:
    facts = ExecutionFacts(
        status=status, message=message, failed_cell=1 if status != "ok" else None, sources=("a", "b"),
        wall_s=3.0, sandboxed=False,
        cells=(CellRecord(index=0, status="ok", seconds=1.0, error=None, execution_count=1),),
        probe=ProbeFacts(status="ok" if probe else "not_run", seconds=1.0, message=""))
    base = {"schema": 1, "class_names": list(CHALLENGE.dataset.classes),
            "models": {"predict": {"predictions": ["rope"]}}}
    return Evidence(notebook="nb.ipynb", challenge=CHALLENGE, profile="full", execution=facts,
                    probe=ProbeOutput.model_validate({**base, **probe}) if probe is not None else None,
                    probe_error=None if probe is not None else message, hidden_labels=("rope",),
                    new_images=new_images, model_files=(), output_text="")


def _check(ev: Evidence, min_images: int = 5) -> tuple[str, str]:
    spec = get_check("new_image_predictions")
    result = spec.evaluate(ev, spec.params.model_validate({"min_images": min_images}))
    return result.status, result.message


FIVE = tuple(NewImage(file=f"{i}.jpg", thumbnail="", dataset_match=None) for i in range(5))
TRUNCATED = NewImage(file="x.jpg", thumbnail="", dataset_match=None, error="truncated")


def test_new_images_messages_say_what_happened() -> None:
    files = [f"{i}.jpg" for i in range(5)]
    answered = {"new_images": {"files": files, "predictions": ["rope"] * 5,
                               "unreadable": [{"file": "x.jpg", "error": "truncated"}]}}
    assert _check(_evidence(new_images=(*FIVE, TRUNCATED), probe=answered)) == (
        "pass", "6 images in new_images/, 1 unreadable (x.jpg: truncated); 5 classified by `predict`")
    assert _check(_evidence(new_images=(*FIVE[:4], TRUNCATED), probe=answered)) == (
        "fail", "5 images in new_images/, 1 unreadable (x.jpg: truncated): 4 readable, 5 needed; add photos "
        "you took or found that are not in the dataset")
    assert _check(_evidence(new_images=(), probe=answered)) == (
        "fail", "0 images in new_images/: 0 readable, 5 needed; add photos you took or found that are not in "
        "the dataset")
    status, message = _check(_evidence(new_images=FIVE, probe=None, status="cell_error",
                                       message="cell 4 raised KeyError: 'x'"))
    assert (status, message) == ("not_measured", "not measured: `predict` was not called on new_images/ because "
                                 "the notebook did not run to its end (cell 4 raised KeyError: 'x'); 5 images in "
                                 "new_images/")
    malformed = _evidence(new_images=(), probe=None, status="malformed", message="toy.ipynb: not JSON")
    malformed = dataclasses.replace(malformed, execution=dataclasses.replace(malformed.execution, cells=()))
    assert _check(malformed) == ("not_measured", "not measured: `predict` was not called on new_images/ because "
                                 "the notebook was not run (the notebook is not a valid notebook)")
    undefined = {"models": {"predict": {"error": "is not defined"}}}
    assert _check(_evidence(new_images=FIVE, probe=undefined)) == (
        "not_measured", "not measured: `predict` was not called on new_images/: the notebook ran, but does not "
        "define predict; 5 images in new_images/")
    raised = {"new_images": {"files": files, "error": "raised on images 0-4: ValueError: bad shape"}}
    assert _check(_evidence(new_images=FIVE, probe=raised)) == (
        "fail", "5 images in new_images/; `predict` gave no predictions for new_images/: it raised on images "
        "0-4: ValueError: bad shape")
    # the grader read 2.jpg, the probe could not (the notebook rewrote it, or a decoder differs)
    partial = {"new_images": {"files": ["0.jpg", "1.jpg", "3.jpg", "4.jpg"], "predictions": ["rope"] * 4,
                              "unreadable": [{"file": "2.jpg", "error": "truncated"}]}}
    assert _check(_evidence(new_images=FIVE, probe=partial)) == (
        "fail", "5 images in new_images/; `predict` was not called on 1 of them, which the probe could not "
        "read (2.jpg: truncated)")
    unknown = {"new_images": {"files": files, "predictions": ["rope", "rope", "rope", "rope", "cat"]}}
    assert _check(_evidence(new_images=FIVE, probe=unknown)) == (
        "fail", "`predict` returned names that are not classes: ['cat']")


# kernel runs: the probe on a folder with a truncated photo, and a team that sent no new_images/

@pytest.mark.kernel
def test_probe_runs_past_a_truncated_new_image(make_toy: Callable[..., Settings], tmp_path: Path,
                                               image_files: dict[str, Path]) -> None:
    settings = make_toy()
    folder = write_submission(tmp_path, "team", GOOD_TOY_CELLS, new_images=2)
    (folder / "new_images" / "broken.JPG").write_bytes(image_files["truncated.jpg"].read_bytes())
    (folder / "new_images" / "phone.jpeg").write_bytes(image_files["rotated.jpeg"].read_bytes())
    result = grade_submission(discover(folder), settings, GradeOptions())
    nb = result.notebooks[0]
    statuses = {c.id: c.status for c in nb.criteria}
    assert statuses["accuracy"] == statuses["loss-history"] == statuses["transfer-learning"] == "pass", statuses
    assert nb.models[0].accuracy == 1.0
    rows = {r.file: (r.prediction is not None, r.error) for r in nb.new_images}
    assert rows == {"broken.JPG": (False, "truncated"), "new0.png": (True, None), "new1.png": (True, None),
                    "phone.jpeg": (True, None)}
    new = next(c for c in nb.criteria if c.id == "new-images")
    assert (new.status, new.message) == (
        "pass", "4 images in new_images/, 1 unreadable (broken.JPG: truncated); 3 classified by `predict`")


@pytest.mark.kernel
def test_a_team_without_new_images_gets_an_empty_folder(make_toy: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_toy()
    cells = [*GOOD_TOY_CELLS, "print(sorted(os.listdir(NEW_IMAGES_DIR)))"]
    folder = write_submission(tmp_path, "team", cells, new_images=0)
    (folder / "new_images").rmdir()
    result = grade_submission(discover(folder), settings, GradeOptions())
    nb = result.notebooks[0]
    failed = {c.id: c.message for c in nb.criteria if c.status != "pass"}
    assert failed == {"new-images": "0 images in new_images/: 0 readable, 2 needed; add photos you took or "
                                    "found that are not in the dataset"}


def test_imagenet_labels_skip_what_the_probe_could_not_read() -> None:
    tf = load_challenge(REPO, "cifar10-tf-cnn")
    images = (NewImage(file="a.jpg", thumbnail="", dataset_match=None), TRUNCATED,
              NewImage(file="z.jpg", thumbnail="", dataset_match=None))
    probe = {"new_images_extra": {"imagenet": {"predictions": ["tabby, tabby cat", "pug, pug-dog"],
                                               "unreadable": [{"file": "x.jpg", "error": "truncated"}]}}}
    ev = dataclasses.replace(_evidence(new_images=images, probe=probe), challenge=tf)
    spec = get_check("imagenet_labels")
    result = spec.evaluate(ev, spec.params.model_validate({}))
    assert (result.status, result.message) == ("pass", "2 photos labelled (a.jpg: tabby, tabby cat, z.jpg: pug, "
                                               "pug-dog)")
    stopped = dataclasses.replace(_evidence(new_images=images, probe=None, status="deadline",
                                            message="the notebook ran past its 600 s deadline"), challenge=tf)
    result = spec.evaluate(stopped, spec.params.model_validate({}))
    assert (result.status, result.message) == (
        "not_measured", f"not measured: `{tf.contract.imagenet}` was not called on new_images/ because the notebook "
        "did not run to its end (the notebook ran past its 600 s deadline); 3 images in new_images/, 1 unreadable "
        "(x.jpg: truncated)")


def _shown_evidence(figures: list[dict[str, Any]], text: str = "") -> Evidence:
    files = [f"{i}.jpg" for i in range(5)]
    answered = {"new_images": {"files": files, "predictions": ["rope", "rope", "tents", "axes", "boots"]},
                "figures": figures}
    return dataclasses.replace(_evidence(new_images=FIVE, probe=answered), output_text=text)


def _axes(title: str, images: int = 1) -> dict[str, Any]:
    return {"title": title, "xlabel": "", "ylabel": "", "lines": [], "images": images, "collections": 0}


def _shown(ev: Evidence) -> tuple[str, str]:
    spec = get_check("new_image_predictions")
    result = spec.evaluate(ev, spec.params.model_validate({"min_images": 5, "shown": True}))
    return result.status, result.message


def test_shown_predictions_are_read_from_the_notebooks_own_figures_and_text() -> None:
    grid = [{"execution_count": 9, "suptitle": "", "axes": [_axes(f"{label}\n{i}.jpg") for i, label in
                                                            enumerate(["rope", "rope", "tents", "axes", "boots"])]}]
    assert _shown(_shown_evidence(grid)) == (
        "pass", "5 images in new_images/; 5 classified by `predict`, 5 shown by the notebook")
    # titled by the prediction alone: each axes counts once, for an image given that class
    bare = [{"execution_count": 9, "suptitle": "", "axes": [_axes(t) for t in ["rope", "rope", "tents", "axes",
                                                                                "boots"]]}]
    assert _shown(_shown_evidence(bare))[0] == "pass"
    printed = "\n".join(f"{i}.jpg -> {label}" for i, label in enumerate(["rope", "rope", "tents", "axes", "boots"]))
    assert _shown(_shown_evidence([], printed))[0] == "pass"


def test_predictions_the_notebook_never_showed_fail_the_shown_criterion() -> None:
    status, message = _shown(_shown_evidence([]))  # the grader's call answered all five; nothing shown
    assert status == "fail"
    assert message.startswith("5 images in new_images/; 5 classified by `predict` when the grader called it, "
                              "but the notebook's own outputs show the predictions of 0 of them, 5 needed")
    # a grid of training images titled by other classes, or a line without the file's name, is no evidence
    training = [{"execution_count": 3, "suptitle": "", "axes": [_axes("gloves"), _axes("helmets"), _axes("rope"),
                                                                 _axes("loss", images=0)]}]
    assert _shown(_shown_evidence(training, "CLASS_NAMES: rope, tents, axes, boots"))[1].split(", ")[1] == (
        "but the notebook's own outputs show the predictions of 1 of them")
    spec = get_check("new_image_predictions")  # without shown: the grader's call alone, as before
    assert spec.evaluate(_shown_evidence([]), spec.params.model_validate({"min_images": 5})).status == "pass"
