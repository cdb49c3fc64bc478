"""The practice split of the public data, ``grader data export`` and ``grader check --practice``."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from grader.cli.main import main
from grader.core.challenge import challenge_ids, load_challenge
from grader.core.errors import ChallengeError, DataError, UsageError
from grader.core.settings import Settings
from grader.data.export import export_public_data, public_data_zip
from grader.data.practice import (
    entry_class,
    load_practice_split,
    practice_hidden_test_set,
    practice_listing,
    practice_public_view,
    practice_split,
    practice_split_problems,
    practice_split_text,
    write_practice_splits,
)
from grader.data.splits import list_dataset, load_split, public_split_text
from grader.data.views import ensure_public_view
from grader.intake.submissions import intake
from grader.pipeline.cache import cache_key
from grader.pipeline.grade import GradeOptions
from grader.report.exports import gradebook_csv, gradescope_results, junit_xml
from grader.report.render import render_index, render_scorecard
from tests.conftest import REPO, real_data_dir
from tests.report.test_report import sample
from tests.support.toy import GOOD_TOY_CELLS, write_submission

DATA = real_data_dir()
needs_data = pytest.mark.skipif(DATA is None, reason="the real datasets folder is not here")


def _public(counts: dict[str, int], prefix: str = "") -> list[tuple[str, str]]:
    return [(f"{prefix}{c}/{c}{i:05d}.png", c) for c, n in counts.items() for i in range(n)]


def test_the_split_is_deterministic_stratified_and_capped() -> None:
    small = _public({"a": 40, "b": 25, "c": 3})
    chosen = practice_split(small)
    assert chosen == practice_split(list(reversed(small)))  # input order does not matter
    assert Counter(entry_class(e) for e in chosen) == {"a": 4, "b": 2, "c": 1}  # 10%, at least one
    big = _public({f"k{i}": 5000 for i in range(10)}, prefix="train/")
    chosen = practice_split(big)
    assert len(chosen) == 1000 and all(e.startswith("train/") for e in chosen)
    assert set(Counter(entry_class(e) for e in chosen).values()) == {100}


# the challenges on class-folder and train-test-folder data (an ``idx`` source such as
# fashion-mnist has no public file listing to draw a practice split from yet)
PRACTICED = ["cifar10-kaggle", "cifar10-mlp", "cifar10-tf-cnn", "cifar10-transfer", "gear-classical", "gear-cnn",
             "gear-deep"]


def test_the_practiced_challenges_are_every_folder_layout_challenge() -> None:
    layouts = {cid: load_challenge(REPO, cid).dataset.layout for cid in challenge_ids(REPO)}
    assert sorted(c for c, lay in layouts.items() if lay in ("class-folders", "train-test-folders")) == PRACTICED


@pytest.mark.parametrize("cid", PRACTICED)
def test_every_challenge_records_a_sound_practice_split(cid: str) -> None:
    challenge = load_challenge(REPO, cid)
    practice = load_practice_split(challenge)
    assert practice, f"{cid} records no practice split"
    assert practice_split_problems(challenge, practice, None) == []
    if challenge.dataset.hidden_split:
        assert not set(practice) & set(load_split(challenge))
    counts = Counter(entry_class(e) for e in practice)
    assert set(counts) == set(challenge.dataset.classes)


@needs_data
def test_the_recorded_files_are_what_the_generator_makes() -> None:
    assert DATA is not None
    for name, cid in (("gear-practice.txt", "gear-cnn"), ("cifar10-practice.txt", "cifar10-mlp")):
        challenge = load_challenge(REPO, cid)
        text = practice_split_text(challenge.dataset.source, list_dataset(DATA, challenge).public)
        assert (REPO / "challenges" / "splits" / name).read_text() == text


def _toy_with_practice(settings: Settings) -> Path:
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"
    toml.write_text(toml.read_text().replace('hidden_split = "splits/toy-hidden.txt"\n',
                                             'hidden_split = "splits/toy-hidden.txt"\n'
                                             'practice_split = "splits/toy-practice.txt"\n'))
    [(path, ids)] = write_practice_splits(settings, ["toy"])
    assert ids == ["toy"]
    return path


def test_practice_listing_scores_on_public_images_only(make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    _toy_with_practice(settings)
    challenge = load_challenge(settings.project_dir, "toy")
    assert settings.data_dir is not None
    listing = practice_listing(settings.data_dir, challenge)
    full = list_dataset(settings.data_dir, challenge)
    assert len(listing.hidden) == 3 and {c for _, c in listing.hidden} == {"red", "green", "blue"}
    assert not {e for e, _ in listing.hidden} & {e for e, _ in full.hidden}
    assert set(listing.public) | set(listing.hidden) == set(full.public)
    assert not set(listing.public) & set(listing.hidden)
    test_set = practice_hidden_test_set(settings, challenge, listing=listing)
    assert sorted(test_set.labels) == ["blue", "green", "red"] and test_set.public is None


def test_a_challenge_without_a_practice_split_has_no_practice_check(make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    assert settings.data_dir is not None
    with pytest.raises(ChallengeError, match="toy records no practice split, so it has no practice check"):
        practice_listing(settings.data_dir, load_challenge(settings.project_dir, "toy"))


def test_validate_refuses_a_practice_entry_of_the_hidden_split(
        make_toy: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_toy()
    path = _toy_with_practice(settings)
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"  # validate wants a public split
    toml.write_text(toml.read_text().replace("[dataset]\n", '[dataset]\npublic_split = "splits/toy-public.txt"\n'))
    assert settings.data_dir is not None
    toy = load_challenge(settings.project_dir, "toy")
    (path.parent / "toy-public.txt").write_text(public_split_text(toy, list_dataset(settings.data_dir, toy)))
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    monkeypatch.setenv("GRADER_DATA_DIR", str(settings.data_dir))
    assert main(["validate"]) == 0
    assert "; practice split 3" in capsys.readouterr().out
    path.write_text(path.read_text() + "red/red0.png\n")  # red0 is in the hidden split
    assert main(["validate"]) == 2
    err = capsys.readouterr().err
    assert "practice split of toy: 1 entries in the hidden test set, e.g. red/red0.png" in err
    with pytest.raises(DataError, match="1 entries in the hidden test set"):
        practice_listing(Path(str(settings.data_dir)), load_challenge(settings.project_dir, "toy"))


@needs_data
def test_gear_export_holds_no_hidden_file_and_serves_a_practice_check(tmp_path: Path) -> None:
    assert DATA is not None
    settings = Settings(project_dir=REPO, data_dir=DATA, cache_dir=tmp_path / "cache", python="python3")
    target = tmp_path / "gear-export"
    seen: list[tuple[int, int]] = []
    summary = export_public_data(settings, "gear-cnn", target, views=False,
                                 on_progress=lambda done, total: seen.append((done, total)))
    challenge = load_challenge(REPO, "gear-cnn")
    hidden = set(load_split(challenge))
    files = [p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()]
    gear = [f.removeprefix("gear/") for f in files if f.startswith("gear/")]
    assert len(gear) == sum(n for _, n in summary.per_class) == 1698
    assert not set(gear) & hidden and not {Path(f).name for f in gear} & {Path(h).name for h in hidden}
    assert any(f.startswith("weights/mobilenet_tflite/") for f in files)
    assert summary.files == len(files) and seen[-1] == (len(files) - 1, len(files) - 1)
    readme = (target / "README.txt").read_text()
    assert "The hidden test set is NOT included" in readme
    assert "practice split of these public images (169 images" in readme
    assert "GRADER_DATA_DIR=/path/to/this/folder grader check --practice team/" in readme
    assert ("    ci     each cell 15 min, the whole notebook 25 min\n"
            "    full   each cell 1 h, the whole notebook 1 h") in readme
    assert "when it is graded (offline: nothing can be installed then):\n    Python 3." in readme
    assert "    torch 2." in readme and "    scikit-learn " in readme
    exported = practice_listing(target, challenge)
    assert exported == practice_listing(DATA, challenge) and len(exported.hidden) == 169
    on_export = Settings(project_dir=REPO, data_dir=target, cache_dir=tmp_path / "cache", python="python3")
    test_set = practice_hidden_test_set(on_export, challenge, listing=exported)  # gear's public split not read
    assert len(test_set.files) == 169 and test_set.public is None
    with pytest.raises(DataError, match="files of the hidden test set are missing"):
        list_dataset(target, challenge)  # the normal check still insists on the hidden files
    with pytest.raises(UsageError, match="is not empty"):
        export_public_data(settings, "gear-cnn", target, views=False)


def test_the_zip_is_built_once_and_holds_the_public_files_only(make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    _toy_with_practice(settings)
    path = public_data_zip(settings, "toy")
    assert public_data_zip(settings, "toy") == path and path.parent == settings.cache_dir / "exports"
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
    assert "toy-public-data/README.txt" in names
    images = [n for n in names if n.endswith(".png")]
    assert len(images) == 12 and not [n for n in images if n.rsplit("/", 1)[1] in ("red0.png", "red1.png")]


def test_practice_is_labelled_on_every_output() -> None:
    result = sample().model_copy(update={"practice": True})
    html = render_scorecard(result)
    assert ("Practice scorecard: scored on the practice split of the public data (3 images), not on the "
            "hidden test set.") in html
    assert "<title>Practice scorecard: team3</title>" in html and "predict on the practice split: accuracy" in html
    assert "on the hidden test set: accuracy" not in html
    index = render_index([result], ["team3"])
    assert "<h1>Practice run</h1>" in index and '<span class="badge practice-badge">practice</span>' in index
    [row] = csv.DictReader(io.StringIO(gradebook_csv([result])))
    assert row["practice"] == "yes"
    suite = ET.fromstring(junit_xml([result])).find("testsuite")
    assert suite is not None and suite.get("name") == "team3 (practice)"
    assert [(p.get("name"), p.get("value")) for p in suite.iter("property")] == [("practice", "true")]
    assert gradescope_results(result)["output"].startswith(
        "PRACTICE (scored on the practice split of the public data, not on the hidden test set): FAIL")
    assert json.loads(result.model_dump_json())["practice"] is True
    plain = result.model_copy(update={"practice": False})
    assert "Practice" not in render_scorecard(plain) and "Practice run" not in render_index([plain], ["t"])


@pytest.mark.kernel
def test_check_practice_end_to_end(make_toy: Callable[..., Settings], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_toy()
    _toy_with_practice(settings)
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    monkeypatch.setenv("GRADER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(settings.cache_dir))
    team = write_submission(tmp_path / "subs", "alpha", GOOD_TOY_CELLS)
    out = tmp_path / "out"
    assert main(["check", str(team), "--out", str(out), "--sandbox", "none", "--practice"]) == 0
    result = json.loads((out / "alpha" / "result.json").read_text())
    assert result["practice"] is True
    [model] = [m for nb in result["notebooks"] for m in nb["models"] if m["role"] == "predict"]
    assert model["n"] == 3 and model["accuracy"] == 1.0
    [accuracy] = [c for nb in result["notebooks"] for c in nb["criteria"] if c["id"] == "accuracy"]
    assert accuracy["message"].startswith("`predict` scored 1.000 on 3 practice images")  # not "hidden test"
    assert "(3 images), not on the hidden test set" in (out / "alpha" / "scorecard.html").read_text()
    assert "<h1>Practice run</h1>" in (out / "index.html").read_text()
    [row] = csv.DictReader((out / "gradebook.csv").read_text().splitlines())
    assert row["practice"] == "yes" and row["n"] == "3"
    suite = ET.fromstring((out / "junit.xml").read_text()).find("testsuite")
    assert suite is not None and suite.get("name") == "alpha (practice)"
    assert json.loads((out / "alpha" / "results.json").read_text())["output"].startswith("PRACTICE (")


def test_a_practice_result_is_cached_apart_from_the_real_one(make_toy: Callable[..., Settings],
                                                             tmp_path: Path) -> None:
    settings = make_toy()
    team = write_submission(tmp_path / "subs", "alpha", GOOD_TOY_CELLS)
    [submission] = intake([team], workspace=tmp_path, challenges=("toy",))
    real = cache_key(submission, settings, GradeOptions())
    assert cache_key(submission, settings, GradeOptions(practice=True)) != real


def _toy_with_added_class(settings: Settings) -> None:
    """The toy challenge with an added class ``white`` (``<data>/whites/``: w0 hidden, w1 reserved)."""
    import shutil

    assert settings.data_dir is not None
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"
    toml.write_text(toml.read_text().replace("[contract]\n", '[dataset.added_class]\nname = "white"\n'
                                             'source = "whites"\nhidden = ["w0.png"]\nreserved = ["w1.png"]\n\n'
                                             "[contract]\n"))
    (settings.data_dir / "whites").mkdir()
    for i in range(4):
        shutil.copyfile(settings.data_dir / "toy" / "red" / f"red{i}.png", settings.data_dir / "whites" / f"w{i}.png")


def test_the_cli_exports_a_folder_a_practice_check_can_use(
        make_toy: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_toy()
    _toy_with_practice(settings)
    _toy_with_added_class(settings)
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    monkeypatch.setenv("GRADER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(settings.cache_dir))
    target = tmp_path / "export"
    assert main(["data", "export", "toy", str(target)]) == 0
    captured = capsys.readouterr()
    assert "wrote 15 files" in captured.out and "12 public images of toy, 2 of the added class" in captured.out
    assert "    14 of 14 files" in captured.err
    assert sorted(p.name for p in (target / "whites").iterdir()) == ["w2.png", "w3.png"]  # never w0 (hidden), w1
    assert main(["data", "export", "toy", str(target)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main(["data", "export", "toy", str(target), "--force"]) == 0
    # the export as the data folder: the practice view builds without the hidden files
    exported = Settings(project_dir=settings.project_dir, data_dir=target, cache_dir=tmp_path / "cache2",
                        python=settings.python)
    toy = load_challenge(settings.project_dir, "toy")
    view = practice_public_view(exported, toy)
    assert sorted(p.name for p in (view / "whites").iterdir()) == ["w2.png", "w3.png"]
    assert len(list((view / "toy").rglob("*.png"))) == 12 - 3
    with pytest.raises(DataError, match="files of the added class are missing: w0.png, w1.png"):
        ensure_public_view(exported, toy, listing=practice_listing(target, toy))  # the normal check still holds
