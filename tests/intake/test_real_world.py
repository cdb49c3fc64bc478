"""Every real-world form of tests/assets/ in ONE `grader check` batch, as a coach would run it: each
team gets its own scorecard with its exact verdict and status, no fault stops the batch, the good
ones pass, and the batch exits 1 (never 3)."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from grader.cli.main import main
from grader.core.settings import Settings
from tests.support.toy import GOOD_TOY_CELLS, write_submission

ASSETS = Path(__file__).resolve().parents[1] / "assets"

# what each notebook asset must give: (verdict, execution status). The 4.x, stored-outputs, pip and
# magics assets are fragments (tests/intake/test_notebook.py splices them into a whole notebook): alone they
# run to their end and fail `runs` for want of the contract; nbformat3 and kernelspec are whole
# notebooks sent without new_images/: only the new-images criterion fails.
EXPECTED = {
    **{f"notebook-{kind}": ("fail", "ok") for kind in ("4.0", "4.4", "4.5", "stored-outputs", "pip",
                                                        "magics")},
    "notebook-nbformat3": ("fail", "ok"), "notebook-kernelspec": ("fail", "ok"),
    "notebook-r-kernel": ("fail", "malformed"),
    **{f"notebook-{kind}": ("fail", "malformed") for kind in (
        "conflict", "databricks", "empty", "html", "invalid-json", "jupytext", "no-cells", "rmarkdown",
        "schema", "script", "truncated", "zeppelin")},
}


def _phone_team(root: Path) -> Path:
    """A good team whose new_images/ hold what phones and browsers save: an upper-case JPEG with
    an EXIF rotation, an RGBA PNG, a 16-bit PNG and one truncated upload."""
    team = write_submission(root, "phones", GOOD_TOY_CELLS, new_images=0)
    images = team / "new_images"
    rotated = Image.new("RGB", (40, 20), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated.save(images / "IMG_0001.JPG", exif=exif)
    Image.new("RGBA", (30, 30), (30, 200, 40, 120)).save(images / "screenshot.PNG")
    Image.new("I;16", (30, 30), 40000).save(images / "scan16.png")
    Image.new("RGB", (30, 30), (30, 40, 220)).save(images / "blue.webp")
    whole = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 40, 220)).save(whole, "JPEG")
    (images / "cut.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    return team


@pytest.mark.kernel
def test_every_real_world_form_in_one_batch(make_toy: Callable[..., Settings], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_toy()
    for name, value in (("GRADER_PROJECT_DIR", settings.project_dir), ("GRADER_DATA_DIR", settings.data_dir),
                        ("GRADER_CACHE_DIR", settings.cache_dir)):
        monkeypatch.setenv(name, str(value))
    (tmp_path / "empty").mkdir()
    cohort = tmp_path / "cohort.zip"
    with zipfile.ZipFile(cohort, "w") as zf:
        for team in ("carol", "dave"):  # alice's last cell checks that it sees only itself
            text = (ASSETS / "intake-lms" / "alice.ipynb").read_text().replace("alice.ipynb", f"{team}.ipynb")
            zf.writestr(f"export/{team}/{team}.ipynb", text)
        zf.writestr("__MACOSX/export/carol/._toy.ipynb", b"\0\5\26\7")
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("team/toy.ipynb", b"\0" * (64 << 20))
    paths = [*(ASSETS / name for name in sorted(EXPECTED)), ASSETS / "intake-nested" / "team3",
             ASSETS / "intake-junk" / "team7", _phone_team(tmp_path), tmp_path / "empty", cohort, bomb]
    out = tmp_path / "out"
    assert main(["check", *map(str, paths), "--out", str(out), "--sandbox", "auto"]) == 1

    def result(folder: str) -> dict[str, object]:
        return json.loads((out / folder / "result.json").read_text())  # type: ignore[no-any-return]

    for name, (verdict, status) in EXPECTED.items():
        data = result(name)
        nb = data["notebooks"][0]  # type: ignore[index]
        assert (data["verdict"], nb["execution"]["status"]) == (verdict, status), (name, nb["execution"])
        assert (out / name / "scorecard.html").is_file()
        runs = next(c for c in nb["criteria"] if c["id"] == "runs")
        missed = {c["id"] for c in nb["criteria"] if c["status"] != "pass"}
        if name in ("notebook-nbformat3", "notebook-kernelspec"):
            assert missed == {"new-images"}, (name, nb["criteria"])
        elif status == "ok":
            assert runs["message"] == "the notebook ran, but does not define CLASS_NAMES / predict"
    assert result("notebook-kernelspec")["notebooks"][0]["notes"]  # type: ignore[index]
    phones = result("phones")
    assert phones["verdict"] == "pass"
    rows = {r["file"]: r for r in phones["notebooks"][0]["new_images"]}  # type: ignore[index]
    assert rows["cut.jpg"]["error"] is not None and rows["cut.jpg"]["prediction"] is None
    assert {f: r["prediction"] for f, r in rows.items() if f != "cut.jpg"} == {
        "IMG_0001.JPG": "red", "screenshot.PNG": "green", "scan16.png": "red", "blue.webp": "blue"}
    # the intake assets are fragments too (no contract): they must run to their end
    junk = result("team7")  # its stray Untitled1.ipynb (code, no challenge) is not graded
    assert [nb["notebook"] for nb in junk["notebooks"]] == ["toy.ipynb"]  # type: ignore[union-attr]
    assert junk["notebooks"][0]["execution"]["status"] == "ok"  # type: ignore[index]
    assert "Untitled1.ipynb (names no challenge, while toy.ipynb does: not graded; name its challenge " \
        "in its metadata or file name to have it graded)" in junk["ignored"]  # type: ignore[operator]
    nested = result("team3")["notebooks"][0]  # type: ignore[index]
    assert nested["execution"]["status"] == "ok", nested["execution"]  # ran in code/, read ../README.md
    assert result("empty")["verdict"] == "fail" and result("empty")["problems"]
    assert result("bomb")["verdict"] == "fail" and "bomb" in " ".join(result("bomb")["problems"])  # type: ignore[arg-type]
    for team in ("carol", "dave"):  # each saw only its own notebook (its last cell); no new_images/ sent
        criteria = {c["id"]: c["status"] for c in result(team)["notebooks"][0]["criteria"]}  # type: ignore[index]
        assert {k for k, v in criteria.items() if v != "pass"} == {"new-images"}, (team, criteria)
