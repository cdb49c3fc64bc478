"""Per-profile time limits: what a challenge.toml declares, and where a student reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.core import challenge_ids, hard_limit_s, load_challenge, minutes
from tests.conftest import REPO


def test_a_profile_overrides_the_cell_limit_and_the_deadline() -> None:
    deep = load_challenge(REPO, "gear-deep")
    assert (deep.cell_timeout_for("ci"), deep.deadline_for("ci")) == (900, 1500)  # [execution]'s
    assert (deep.cell_timeout_for("full"), deep.deadline_for("full")) == (3600, 5400)
    assert deep.time_limits("full") == "each cell 1 h, the whole notebook 1 h 30 min"
    # a restore and the probe's two steps may come after the notebook's deadline, then the kill
    assert deep.hard_limit_for("ci") == hard_limit_s(1500, 600) == 1500 + 3 * 600 + 60


@pytest.mark.parametrize("seconds, words", [(45, "45 s"), (60, "1 min"), (1500, "25 min"), (3600, "1 h"),
                                            (5400, "1 h 30 min")])
def test_limits_in_words(seconds: int, words: str) -> None:
    assert minutes(seconds) == words


@pytest.mark.parametrize("cid", challenge_ids(REPO))
def test_every_starter_and_brief_states_the_limits_of_every_profile(cid: str) -> None:
    """What the starter and the brief say is what challenge.toml enforces: change one, the test
    names the other."""
    challenge = load_challenge(REPO, cid)
    folder = REPO / "challenges" / cid
    starter = json.loads((folder / "starter.ipynb").read_text(encoding="utf-8"))
    intro = "".join(starter["cells"][0]["source"])
    brief = (folder / "README.md").read_text(encoding="utf-8")
    for profile in challenge.profiles:
        said = f"under the `{profile}` profile {challenge.time_limits(profile)}"
        assert said in intro, f"{folder / 'starter.ipynb'}: its first cell should say {said!r}"
        assert said in brief.replace("\n", " "), f"{folder / 'README.md'}: its Time limits should say {said!r}"


def test_the_starters_are_still_valid_notebooks() -> None:
    import nbformat

    for cid in challenge_ids(REPO):
        nbformat.validate(nbformat.read(Path(REPO / "challenges" / cid / "starter.ipynb"), as_version=4))
