"""Saved models told by their signatures (nothing unpickled or loaded), and the saved-model
criterion naming what was found and how to save a model in the notebook's framework."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from grader.core.challenge import load_challenge
from grader.evidence.modelfile import explain, human_size, identify
from grader.evidence.records import CellRecord, Evidence, ExecutionFacts, ModelFile, ProbeFacts, ProbeOutput
from grader.score.checks import get_check
from grader.score.score import model_files as _model_files
from tests.conftest import REPO

# every framework's own save call, on one tiny model each, in a process of its own (TensorFlow)
_SAVE = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    out = sys.argv[1]
    import torch
    net = torch.nn.Linear(3, 2)
    torch.save(net.state_dict(), os.path.join(out, "best.pt"))
    torch.save(net.state_dict(), os.path.join(out, "legacy.pth"), _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(net), os.path.join(out, "scripted.pt"))
    import joblib, pickle, numpy as np
    from sklearn.svm import SVC
    svc = SVC().fit(np.random.default_rng(0).random((20, 2)), [0, 1] * 10)
    joblib.dump(svc, os.path.join(out, "svc.joblib"))
    joblib.dump(svc, os.path.join(out, "svc-zlib.joblib"), compress=3)
    joblib.dump(svc, os.path.join(out, "svc.joblib.gz"))
    with open(os.path.join(out, "svc.pkl"), "wb") as fh:
        pickle.dump(svc, fh)
    np.savez(os.path.join(out, "weights.npz"), w=np.zeros((3, 2)), b=np.zeros(2))
    import keras
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.save(os.path.join(out, "best.keras"))
    model.save(os.path.join(out, "best.h5"))
""")


def _saved_model_folder(path: Path) -> Path:
    """The layout ``tf.saved_model.save`` writes (its files' contents do not matter here)."""
    (path / "variables").mkdir(parents=True)
    (path / "assets").mkdir()
    (path / "saved_model.pb").write_bytes(b"\x08\x01\x12\x10" + b"\x01" * 3000)
    (path / "fingerprint.pb").write_bytes(b"\x08\x01" * 30)
    (path / "variables" / "variables.index").write_bytes(b"\x02" * 200)
    (path / "variables" / "variables.data-00000-of-00001").write_bytes(b"\x03" * 5000)
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("saved")
    done = subprocess.run([sys.executable, "-c", _SAVE, str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    _saved_model_folder(out / "exported")
    return out


def _onnx_bytes() -> bytes:
    """A ModelProto by hand: ir_version 8, producer "pytorch", a graph, opset 17 (onnx's field numbers)."""
    graph = b"\x0a\x06\x12\x01x\x1a\x01y"  # node { output: "x" name: "y" }
    return (b"\x08\x08" + b"\x12\x07pytorch" + b"\x3a" + bytes([len(graph)]) + graph
            + b"\x42\x02\x10\x11")


def test_every_framework_file_is_told_by_its_signature(saved: Path) -> None:
    found = {p.name: identify(p) for p in sorted(saved.iterdir())}
    assert {name: (f.name, f.description) if f else None for name, f in found.items()} == {
        "best.pt": ("pytorch", "PyTorch torch.save archive (2 tensors)"),
        "legacy.pth": ("pytorch-legacy", "PyTorch torch.save file (legacy format)"),
        "scripted.pt": ("torchscript", "PyTorch TorchScript archive (torch.jit.save)"),
        "svc.joblib": ("joblib", "scikit-learn SVC (joblib)"),
        "svc-zlib.joblib": ("joblib", "scikit-learn SVC (compressed joblib)"),
        "svc.joblib.gz": ("joblib", "scikit-learn SVC (compressed joblib)"),
        "svc.pkl": ("pickle", "scikit-learn SVC (pickle)"),
        "weights.npz": ("numpy", "NumPy arrays (np.savez, 2 arrays)"),
        "best.keras": ("keras", "Keras model archive (.keras)"),
        "best.h5": ("hdf5", "HDF5 file (Keras model.save / save_weights .h5)"),
        "exported": ("savedmodel", "TensorFlow SavedModel folder (saved_model.pb, variables/)"),
    }


def test_onnx_and_hdf5_at_an_offset(tmp_path: Path) -> None:
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(_onnx_bytes())
    found = identify(onnx)
    assert found is not None and (found.name, found.description) == ("onnx", "ONNX model (ir_version 8, from pytorch)")
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(_onnx_bytes()[:-1])  # a field runs past the end: not a ModelProto
    assert identify(cut) is None
    no_graph = tmp_path / "nograph.onnx"
    no_graph.write_bytes(b"\x08\x08\x12\x07pytorch")
    assert identify(no_graph) is None
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    tensors = tmp_path / "model.safetensors"
    tensors.write_bytes(len(header).to_bytes(8, "little") + header + b"\x00" * 8)
    found = identify(tensors)
    assert found is not None and (found.name, found.description) == ("safetensors", "safetensors file (1 tensors)")
    user_block = tmp_path / "user-block.h5"
    user_block.write_bytes(b"\x01" * 1024 + b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    assert identify(user_block) is not None


def test_what_is_not_a_model_is_named(tmp_path: Path) -> None:
    cases = {
        "zeros.pt": b"\x00" * 4000,
        "random.pt": bytes.fromhex("3fa1c2d4e5f60718") + os.urandom(2000).replace(b"\x00", b"\x01"),
        "notes.pt": b"best epoch 7, val loss 0.31\n",
        "empty.pt": b"",
        "dict.pkl": pickle.dumps({"epoch": 7, "loss": [0.5, 0.3]}),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    with zipfile.ZipFile(tmp_path / "bundle.zip", "w") as zf:
        zf.writestr("readme.txt", "hello")
    explained = {p.name: explain(p) for p in sorted(tmp_path.iterdir()) if identify(p) is None}
    assert explained == {
        "bundle.zip": "a zip archive (readme.txt) that is no PyTorch, Keras or NumPy file",
        "dict.pkl": "a pickle that names no model library",
        "empty.pt": "it is empty",
        "notes.pt": "it is text: 'best epoch 7, val loss 0.31'",
        "random.pt": "unrecognised data, starts with 3f a1 c2 d4 e5 f6 07 18 ...",
        "zeros.pt": "it is all zero bytes",
    }
    assert human_size(4000) == "4.0 kB" and human_size(512) == "512 bytes" and human_size(1_234_567) == "1.2 MB"


def test_a_pickle_is_read_not_run(tmp_path: Path) -> None:
    """A pickle that would run a shell command when loaded, dressed as a scikit-learn model."""
    marker = tmp_path / "ran"
    command = f"touch {marker}".encode()

    def text(value: bytes) -> bytes:  # SHORT_BINUNICODE
        return b"\x8c" + bytes([len(value)]) + value

    payload = (b"\x80\x04" + text(b"sklearn.linear_model") + b"\x94" + text(b"Ridge") + b"\x94\x93\x94"
               + b"0" + b"cposix\nsystem\n" + text(command) + b"\x85R.")  # POP, GLOBAL, TUPLE1, REDUCE
    path = tmp_path / "model.pkl"
    path.write_bytes(payload)
    found = identify(path)
    assert found is not None and found.description == "scikit-learn Ridge (pickle)"
    assert not marker.exists()


def test_model_files_lists_formats_and_a_savedmodel_as_one(saved: Path, tmp_path: Path) -> None:
    started = time.time() - 5
    model_dir = tmp_path / "saved_model"
    model_dir.mkdir()
    (model_dir / "best.pt").write_bytes((saved / "best.pt").read_bytes())
    (model_dir / "zeros.pt").write_bytes(b"\x00" * 4000)
    subprocess.run(["cp", "-r", str(saved / "exported"), str(model_dir / "export")], check=True)
    (model_dir / "link.pt").symlink_to(saved / "best.pt")
    old = model_dir / "old.pkl"
    old.write_bytes((saved / "svc.pkl").read_bytes())
    os.utime(old, (started - 3600, started - 3600))
    files = _model_files(model_dir, started)
    assert [(f.path, f.format, f.written_during_run) for f in files] == [
        ("best.pt", "pytorch", True), ("export", "savedmodel", True), ("old.pkl", "pickle", False),
        ("zeros.pt", None, True)]
    export = next(f for f in files if f.path == "export")
    assert export.size == sum(p.stat().st_size for p in (saved / "exported").rglob("*") if p.is_file())
    assert files[-1].description == "it is all zero bytes"
    root = tmp_path / "root"
    subprocess.run(["cp", "-r", str(saved / "exported"), str(root)], check=True)
    assert [(f.path, f.format) for f in _model_files(root, started)] == [(".", "savedmodel")]


CHALLENGE = load_challenge(REPO, "gear-cnn")


def _evidence(model_files: tuple[ModelFile, ...], code: str) -> Evidence:
    facts = ExecutionFacts(
        status="ok", message="", failed_cell=None, sources=("a",), wall_s=3.0, sandboxed=False,
        cells=(CellRecord(index=0, status="ok", seconds=1.0, error=None, execution_count=1),),
        probe=ProbeFacts(status="ok", seconds=1.0, message=""))
    probe = ProbeOutput.model_validate({"schema": 1, "class_names": list(CHALLENGE.dataset.classes),
                                        "models": {"predict": {"predictions": ["rope"]}}})
    return Evidence(notebook="nb.ipynb", challenge=CHALLENGE, profile="full", execution=facts, probe=probe,
                    probe_error=None, hidden_labels=("rope",), new_images=(), model_files=model_files,
                    output_text="", code=code)


def _saved(files: tuple[ModelFile, ...], code: str = "import torch\n") -> tuple[str, str]:
    spec = get_check("saved_model")
    result = spec.evaluate(_evidence(files, code), spec.params.model_validate({}))
    return result.status, result.message


ZEROS = ModelFile(path="best.pt", size=4000, written_during_run=True, format=None,
                  description="it is all zero bytes")
TORCH = ModelFile(path="best.pt", size=1_234_567, written_during_run=True, format="pytorch",
                  description="PyTorch torch.save archive (8 tensors)")


def test_saved_model_wants_a_model_and_says_how_in_the_notebooks_framework() -> None:
    assert _saved((TORCH,)) == ("pass", "saved: best.pt (PyTorch torch.save archive (8 tensors), 1.2 MB)")
    assert _saved((ZEROS,)) == (
        "fail", "best.pt (4.0 kB) is not a model file: it is all zero bytes; save your best model there: "
        "torch.save(model.state_dict(), os.path.join(MODEL_DIR, 'best.pt'))")
    keras = "import numpy as np\nfrom tensorflow import keras\nfrom sklearn.metrics import confusion_matrix\n"
    assert _saved((ZEROS,), keras)[1].endswith("save your best model there: "
                                               "model.save(os.path.join(MODEL_DIR, 'best.keras'))")
    assert _saved((), "from sklearn.svm import SVC\n") == (
        "fail", "no model file was saved under MODEL_DIR during this run; save your best model there: "
        "joblib.dump(model, os.path.join(MODEL_DIR, 'model.joblib'))")
    assert _saved((), "print(1)\n")[1].endswith(
        "torch.save(model.state_dict(), os.path.join(MODEL_DIR, 'best.pt')) in PyTorch, "
        "model.save(os.path.join(MODEL_DIR, 'best.keras')) in Keras, "
        "joblib.dump(model, os.path.join(MODEL_DIR, 'model.joblib')) in scikit-learn")
    old = ModelFile(path="old.pt", size=5000, written_during_run=False, format="pytorch", description="x")
    assert _saved((old,))[1].startswith("no model file was saved under MODEL_DIR during this run "
                                        "(old.pt is older than the run); ")
    tiny = ModelFile(path="w.npy", size=200, written_during_run=True, format="numpy",
                     description="NumPy array (np.save)")
    assert _saved((tiny,))[1].startswith("w.npy is a NumPy array (np.save) of 200 bytes: under the 1.0 kB "
                                         "a trained model takes; ")
