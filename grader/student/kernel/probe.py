"""Probe cells: call the submission contract in the student's kernel and write plain JSON.

This file's source runs in the student's kernel after the last cell, in two steps the runner
calls in order (:func:`grader.student.runner.run`):

1. ``_grader_probe(CONFIG)``, the *visible* step: the class names, ``predict`` (and the ImageNet
   model) on the team's new images, the loss history and the captured figures, written to
   ``CONFIG["out"]``. What it writes may reach the team (their scorecard shows it).
2. ``_grader_probe_hidden(CONFIG)``, the *hidden* step, run only once the grader has opened the
   gate of the hidden images (:mod:`grader.sandbox.gate`): the contract's functions on the hidden test
   set and the other held-out sets, written to ``CONFIG["hidden_out"]`` as class names and
   fixed error kinds only, never text of the kernel's: nothing produced from here on reaches a
   team but answers validated as class names.

It imports nothing of the grader, sees image files under neutral names and no labels, and writes
only strings, numbers and lists: the grader validates them against a schema and scores them
outside this process. An image file the visible step cannot decode is reported by name
(``unreadable``) and left out of the call; the rest of the folder is still run.
"""


def _grader_to_rgb(im):
    """The image as upright 8-bit RGB: a copy of ``grader.data.images.to_rgb`` (a test compares
    the two on every mode)."""
    from PIL import Image, ImageOps

    try:
        im = ImageOps.exif_transpose(im)
    except Exception:
        im = im.copy()
    if im.mode.startswith("I;16") or im.mode == "I":
        im = im.convert("I").point(lambda v: v / 257).convert("L")
    elif im.mode == "F":
        low, high = im.getextrema()
        scale = 255 if 0 <= float(low) and float(high) <= 1 else 1 / 257
        im = im.point(lambda v: v * scale).convert("L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = (im.convert("LA") if im.mode == "La" else im).convert("RGBA")  # no La -> RGBA in Pillow
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _grader_image_rgb(path):
    """Open one image file as upright 8-bit RGB: ``(image, None)`` or ``(None, reason)``.

    A copy of ``grader.data.images.decode`` (this file cannot import the grader; a test compares
    the two on every mode): EXIF orientation applied; I;16 / I / F scaled to 8 bits; alpha
    composited on white; Pillow's decompression-bomb limit kept; truncated files are errors.
    """
    import os
    import warnings

    from PIL import Image, ImageFile, UnidentifiedImageError

    max_pixels = int(1024 * 1024 * 1024 // 4 // 3)  # Pillow's default MAX_IMAGE_PIXELS
    if os.path.islink(path):
        return None, "is a symbolic link; put the image itself in new_images/"
    if path.lower().endswith((".heic", ".heif")):
        try:
            import pillow_heif
        except ImportError:
            return None, "HEIC/HEIF, which this grader cannot read (pillow-heif is not installed)"
        pillow_heif.register_heif_opener()

    truncated, limit = ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS
    try:
        ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = False, max_pixels
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                width, height = im.size
                if width * height > max_pixels:
                    return None, f"oversized: {width}x{height} pixels, over the {max_pixels:,}-pixel limit"
                im.load()
                return _grader_to_rgb(im), None
    except Exception as err:
        if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
            return None, f"oversized: over the {max_pixels:,}-pixel limit"
        if isinstance(err, UnidentifiedImageError):
            return None, "not an image Pillow can read"
        text = str(err)
        if "truncated" in text or "broken data stream" in text or "premature end" in text.lower():
            return None, "truncated"
        return None, f"{type(err).__name__}: {text}"[:200]
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES, Image.MAX_IMAGE_PIXELS = truncated, limit


def _grader_run_model(fn, folder, files, config, image_mode=None):
    """Call ``fn`` on the images of ``folder`` named ``files``, ``config["batch_size"]`` at a
    time: ``{"predictions", "seconds", "inference_s"[, "unreadable"]}`` or ``{"error", ...}``
    with ``"kind"`` one of raised, not_a_list, wrong_count, not_str."""
    import os
    import time
    import traceback

    mode_now = image_mode or config.get("image_mode", "RGB")
    limit = config["max_label_chars"]
    predictions = []
    unreadable = []  # [{"file", "error"}]: left out of the calls
    started = time.perf_counter()
    inside = 0.0  # seconds spent in the student's function
    batch = config["batch_size"]

    def failed(kind, message):
        report = {"error": message, "kind": kind, "seconds": time.perf_counter() - started}
        return {**report, "unreadable": unreadable} if unreadable else report

    for start in range(0, len(files), batch):
        names = []
        images = []
        for name in files[start : start + batch]:
            image, error = _grader_image_rgb(os.path.join(folder, name))
            if error is None:
                names.append(name)
                # the contract's image mode (challenge.toml [contract] image_mode): RGB, or L
                images.append(image if image.mode == mode_now else image.convert(mode_now))
            else:
                unreadable.append({"file": name, "error": error})
        if not images:
            continue
        t_call = time.perf_counter()
        try:
            result = fn(images)
        except Exception as err:
            text = "".join(traceback.format_exception_only(type(err), err)).strip()[:2000]
            return failed("raised", f"raised on images {start}-{start + len(names) - 1}: " + text)
        inside += time.perf_counter() - t_call
        try:
            result = list(result)
        except TypeError:
            return failed("not_a_list", f"returned {type(result).__name__}, expected a list of class names")
        if len(result) != len(names):
            return failed("wrong_count", f"returned {len(result)} predictions for {len(names)} images")
        for position, value in enumerate(result):
            if not isinstance(value, str):
                return failed("not_str", f"returned {type(value).__name__} ({str(value)[:50]!r}) for "
                              f"image {start + position}; return class names as str")
            predictions.append(value[:limit])
    done = {"predictions": predictions, "seconds": time.perf_counter() - started, "inference_s": inside}
    return {**done, "unreadable": unreadable} if unreadable else done


def _grader_probe(config):
    """The visible step: class names, new images, history, figures (see the module's docstring)."""
    import json
    import math
    import sys

    ns = get_ipython().user_ns  # noqa: F821 - defined in every IPython kernel
    limit = config["max_label_chars"]
    out = {"schema": 1}

    def run_model(fn, folder, files):
        report = _grader_run_model(fn, folder, files, config)
        report.pop("kind", None)
        return report

    names = ns.get(config["class_names"])
    if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        out["class_names"] = [n[:limit] for n in list(names)[: config["max_classes"]]]
    else:
        out["class_names_error"] = (
            f"{config['class_names']} is not defined" if names is None
            else f"{config['class_names']} is {type(names).__name__}, expected a list of str"
        )

    new_dir = config.get("new_images_dir")
    predict = ns.get(config["models"]["predict"])
    if new_dir and callable(predict):
        files = config["new_images"]
        run = run_model(predict, new_dir, files)
        bad = {u["file"] for u in run.get("unreadable", [])}
        out["new_images"] = {"files": [f for f in files if f not in bad], **run}

    out["new_images_extra"] = {}
    for role, name in config.get("new_image_models", {}).items():
        fn = ns.get(name)
        if new_dir and callable(fn):
            out["new_images_extra"][role] = run_model(fn, new_dir, config["new_images"])
        else:
            out["new_images_extra"][role] = {"error": "is not defined" if fn is None
                                             else f"is {type(fn).__name__}, not a function"}

    def series(values):
        try:
            out_values = [float(v) for v in list(values)[:10_000]]
        except (TypeError, ValueError):
            return None
        return [v if math.isfinite(v) else None for v in out_values]

    history = None
    value = ns.get("HISTORY")
    if isinstance(value, dict):
        history = ("HISTORY", value.get("loss"), value.get("val_loss"))
    if history is None:
        for var, obj in list(ns.items()):
            hist = getattr(obj, "history", None) if not var.startswith("_") else None
            if type(obj).__name__ == "History" and isinstance(hist, dict) and "loss" in hist:
                history = (f"Keras History `{var}`", hist.get("loss"), hist.get("val_loss"))
                break
    if history is None and "training_loss" in ns:
        history = ("training_loss / validation_loss", ns.get("training_loss"),
                   ns.get("validation_loss"))
    if history is not None:
        source, loss, val_loss = history
        out["history"] = {
            "source": source,
            "loss": series(loss) if loss is not None else None,
            "val_loss": series(val_loss) if val_loss is not None else None,
        }

    capture = sys.modules.get("_grader_capture")
    figures = list(getattr(capture, "FIGURES", {}).values()) if capture else []
    out["figures"] = [f for f in figures if isinstance(f, dict)][:100]

    with open(config["out"], "w", encoding="utf-8") as fh:
        json.dump(out, fh, allow_nan=False)


def _grader_probe_hidden(config):
    """The hidden step: the contract's functions on the hidden test set and the held-out sets
    (``config["models"]``, ``config["extra_sets"]``), written to ``config["hidden_out"]``:
    per function either ``{"predictions": [...]}`` (class names, cut at ``max_label_chars``)
    or ``{"error": KIND}``, KIND one of not_defined, not_callable, raised, not_a_list,
    wrong_count, not_str, unreadable. No text of the kernel's (an exception's message, a
    returned value) is written: it could carry the hidden images out."""
    import json

    ns = get_ipython().user_ns  # noqa: F821 - defined in every IPython kernel

    def run(fn, folder, files, image_mode=None):
        if fn is None:
            return {"error": "not_defined"}
        if not callable(fn):
            return {"error": "not_callable"}
        report = _grader_run_model(fn, folder, files, config, image_mode)
        if "error" in report:
            return {"error": report["kind"]}
        if report.get("unreadable"):
            return {"error": "unreadable"}
        return {"predictions": report["predictions"]}

    out = {"schema": 1, "status": "ok", "models": {}, "extra_sets": {}}
    for role, name in config["models"].items():
        out["models"][role] = run(ns.get(name), config["hidden_dir"], config["hidden_files"])
    for role, spec in config.get("extra_sets", {}).items():
        fn = ns.get(spec["fn"])
        if fn is None and spec.get("optional"):
            continue  # an optional function the notebook does not define: nothing to report
        out["extra_sets"][role] = run(fn, spec["dir"], spec["files"], spec.get("image_mode"))
    with open(config["hidden_out"], "w", encoding="utf-8") as fh:
        json.dump(out, fh, allow_nan=False)
