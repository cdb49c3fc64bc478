"""A coach's own challenge on the event server (issue 30): photos with a labels CSV (Kaggle's layout)
made into a challenge by ``grader init`` and ``grader new-challenge`` in a project of the coach's,
an event made by ``grader event create``, and a real ``grader serve`` on 127.0.0.1 (SQLite, the
``ci`` profile) that shows a team the brief, hands out the starter and the public data (the labels
CSV holding the public rows only, no hidden image) and grades the starter to a failing scorecard."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from grader.cli.main import main
from tests.server.test_server_uploads import sign_in
from tests.support.net import free_port, stop_group, wait_listening

CLASSES = {"cat": (200, 40, 40), "dog": (40, 60, 200), "owl": (40, 180, 60)}
PER_CLASS = 12
GRADE_S = 120  # the starter is graded within this (about 6 s here: a kernel, scikit-learn's import)


def write_photos(root: Path, *, seed: int = 0) -> dict[str, str]:
    """``PER_CLASS`` 40x40 PNGs of each class in ``root`` (each its class's colour with a smooth
    random texture: no two near-duplicates) and ``root/labels.csv`` (``id,label``, the ids without
    the extension, as Kaggle writes them); the ids with their labels."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    labels: dict[str, str] = {}
    for n in range(PER_CLASS * len(CLASSES)):
        label = list(CLASSES)[n % len(CLASSES)]
        texture = np.asarray(CLASSES[label])[None, None, :] + rng.integers(-90, 90, size=(4, 4, 3))
        small = Image.fromarray(np.clip(texture, 0, 255).astype(np.uint8))
        small.resize((40, 40), Image.Resampling.BICUBIC).save(root / f"img{n:03d}.png")
        labels[f"img{n:03d}"] = label
    with (root / "labels.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows([("id", "label"), *labels.items()])
    return labels


@dataclass
class Served:
    """The coach's project, the split files' hidden ids, and a team's join link on a running server."""

    project: Path
    labels: dict[str, str]
    hidden: set[str]
    base: str
    team_link: str
    log: Path


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Served]:
    data, project, state = tmp_path / "data", tmp_path / "coach-project", tmp_path / "state"
    labels = write_photos(data / "pets")
    env = {"GRADER_DATA_DIR": str(data), "GRADER_CACHE_DIR": str(tmp_path / "cache"),
           "GRADER_PROJECT_DIR": str(project)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GRADER_STATE_DIR", raising=False)
    assert main(["init", str(project)]) == 0
    assert main(["new-challenge", "pets", "--data", str(data / "pets"), "--framework", "scikit-learn",
                 "--workers", "1"]) == 0
    hidden_file = project / "challenges" / "splits" / "pets-hidden.txt"
    hidden = {Path(line).stem for line in hidden_file.read_text().splitlines() if line and not line.startswith("#")}
    assert 0 < len(hidden) < len(labels) and hidden <= set(labels)
    (tmp_path / "teams.csv").write_text("team\nalpha\n")
    port = free_port()
    capsys.readouterr()
    assert main(["event", "create", "hack", "--challenge", "pets", "--teams", str(tmp_path / "teams.csv"),
                 "--state", str(state), "--port", str(port), "--title", "Pets day"]) == 0
    found = re.search(r"alpha: (http://\S+/join/\S+)", capsys.readouterr().out)
    assert found, "no join link printed"
    log = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "grader", "serve", "--event", "hack", "--state", str(state), "--port", str(port),
            "--profile", "ci", "--sandbox", "none"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_listening(proc, port, log)
        yield Served(project, labels, hidden, f"http://127.0.0.1:{port}", found.group(1), log)
    finally:
        stop_group(proc)


def _team(served: Served) -> tuple[httpx.Client, str]:
    """The team's browser signed in through its printed link (the join page's button); its page and
    CSRF token."""
    client = httpx.Client(base_url=served.base, timeout=30)
    return client, sign_in(client, served.team_link.removeprefix(served.base))


@pytest.mark.kernel
def test_a_coachs_labels_csv_challenge_is_served_and_graded(served: Served) -> None:
    client, csrf = _team(served)
    with contextlib.closing(client):
        home = client.get("/").text
        brief = home[home.index('<div class="brief">'):]
        # the brief new-challenge wrote, with the dataset's facts for this layout
        assert "<h1>pets: Image classification: the pets photos</h1>" in brief
        assert "DATA_DIR/pets/labels.csv" in brief and "cat, dog, owl" in brief
        assert 'href="/challenges/pets/starter.ipynb"' in home and 'href="/challenges/pets/public-data.zip"' in home

        starter = client.get("/challenges/pets/starter.ipynb")
        assert starter.status_code == 200
        notebook = json.loads(starter.content)
        assert notebook["metadata"]["grader"]["challenge"] == "pets"
        assert (served.project / "challenges" / "pets" / "starter.ipynb").read_bytes() == starter.content

        download = client.get("/challenges/pets/public-data.zip")
        assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
            names = archive.namelist()
            (csv_name,) = [n for n in names if n.endswith("/pets/labels.csv")]
            rows = list(csv.DictReader(io.StringIO(archive.read(csv_name).decode("utf-8"))))
        public = set(served.labels) - served.hidden
        assert {r["id"] for r in rows} == public  # every public row, and no hidden one
        assert all(served.labels[r["id"]] == r["label"] for r in rows)
        images = {Path(n).stem for n in names if n.endswith(".png")}
        assert images == public and not images & served.hidden  # no hidden image either

        sent = client.post("/submit", data={"challenge": "pets", "csrf": csrf},
                           files=[("files", ("pets.ipynb", starter.content))], follow_redirects=False)
        assert sent.status_code == 303, sent.text[-2000:]
        listed = re.search(r'<tr class="sub[^"]*" data-id="(\d+)"', client.get("/").text)
        assert listed is not None
        sub = listed.group(1)
        deadline = time.monotonic() + GRADE_S
        while (status := client.get(f"/submissions/{sub}/status").json())["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline, served.log.read_text(errors="replace")[-3000:]
            time.sleep(0.3)
        assert (status["state"], status["verdict"], status["score"]) == ("done", "fail", 0.0), status
        card = client.get(f"/submissions/{sub}/scorecard")
        assert card.status_code == 200
        assert "challenge pets" in card.text and "NotImplementedError" in card.text  # the starter's # YOUR CODE HERE
    assert "Traceback" not in served.log.read_text(errors="replace")
