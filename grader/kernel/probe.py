"""Probe cell: call the submission contract in the student's kernel and write plain JSON.

This file's source runs in the student's kernel after the last cell, followed by a call
``_grader_probe(CONFIG)`` with a JSON config the runner writes. It imports nothing of the
grader, sees image files under neutral names and no labels, and writes only strings, numbers
and lists: the grader validates them against a schema and scores them outside this process.
"""


def _grader_probe(config):
    import json
    import math
    import os
    import sys
    import time
    import traceback

    from PIL import Image

    ns = get_ipython().user_ns  # noqa: F821 - defined in every IPython kernel
    limit = config["max_label_chars"]
    out = {"schema": 1}

    def short_error(err):
        lines = traceback.format_exception_only(type(err), err)
        return "".join(lines).strip()[:2000]

    def run_model(fn, folder, files):
        predictions = []
        started = time.perf_counter()
        inside = 0.0  # seconds spent in the student's function
        batch = config["batch_size"]
        for start in range(0, len(files), batch):
            names = files[start : start + batch]
            images = []
            for name in names:
                with Image.open(os.path.join(folder, name)) as im:
                    images.append(im.convert("RGB"))
            t_call = time.perf_counter()
            try:
                result = fn(images)
            except Exception as err:
                return {"error": f"raised on images {start}-{start + len(names) - 1}: "
                        + short_error(err), "seconds": time.perf_counter() - started}
            inside += time.perf_counter() - t_call
            try:
                result = list(result)
            except TypeError:
                return {"error": f"returned {type(result).__name__}, expected a list of class "
                        "names", "seconds": time.perf_counter() - started}
            if len(result) != len(names):
                return {"error": f"returned {len(result)} predictions for {len(names)} images",
                        "seconds": time.perf_counter() - started}
            for position, value in enumerate(result):
                if not isinstance(value, str):
                    return {"error": f"returned {type(value).__name__} ({str(value)[:50]!r}) for "
                            f"image {start + position}; return class names as str",
                            "seconds": time.perf_counter() - started}
                predictions.append(value[:limit])
        return {"predictions": predictions, "seconds": time.perf_counter() - started,
                "inference_s": inside}

    names = ns.get(config["class_names"])
    if isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names):
        out["class_names"] = [n[:limit] for n in list(names)[: config["max_classes"]]]
    else:
        out["class_names_error"] = (
            f"{config['class_names']} is not defined" if names is None
            else f"{config['class_names']} is {type(names).__name__}, expected a list of str"
        )

    out["models"] = {}
    for role, name in config["models"].items():
        fn = ns.get(name)
        if fn is None:
            out["models"][role] = {"error": "is not defined"}
        elif not callable(fn):
            out["models"][role] = {"error": f"is {type(fn).__name__}, not a function"}
        else:
            out["models"][role] = run_model(fn, config["hidden_dir"], config["hidden_files"])

    new_dir = config.get("new_images_dir")
    predict = ns.get(config["models"]["predict"])
    if new_dir and callable(predict):
        files = config["new_images"]
        out["new_images"] = {"files": files, **run_model(predict, new_dir, files)}

    out["new_images_extra"] = {}
    for role, name in config.get("new_image_models", {}).items():
        fn = ns.get(name)
        if new_dir and callable(fn):
            out["new_images_extra"][role] = run_model(fn, new_dir, config["new_images"])
        else:
            out["new_images_extra"][role] = {"error": "is not defined" if fn is None
                                             else f"is {type(fn).__name__}, not a function"}

    out["extra_sets"] = {}
    for role, spec in config.get("extra_sets", {}).items():
        fn = ns.get(spec["fn"])
        if callable(fn):
            out["extra_sets"][role] = run_model(fn, spec["dir"], spec["files"])
        else:
            out["extra_sets"][role] = {"error": "is not defined" if fn is None
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
