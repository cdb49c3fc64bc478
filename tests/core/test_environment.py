"""The grading environment a coach declares: pins in packages.txt and challenge.toml, what
setup.sh installs, and the list students read."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from grader.core import (
    ChallengeError,
    challenge_ids,
    declared_packages,
    environment_lines,
    installed_version,
    load_challenge,
)
from grader.core.settings import Settings
from tests.conftest import REPO


def _declare(settings: Settings, pins: str) -> Path:
    toml = settings.project_dir / "challenges" / "toy" / "challenge.toml"
    toml.write_text(toml.read_text() + f"\n[environment]\npackages = {pins}\n")
    return toml


def test_a_challenge_declares_pinned_packages(make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    _declare(settings, '["tqdm==4.70.1", "Seaborn==0.13.2"]')
    assert load_challenge(settings.project_dir, "toy").environment.packages == ("tqdm==4.70.1", "Seaborn==0.13.2")
    (settings.project_dir / "packages.txt").write_text("# for every challenge\nwatermark==2.5.0  # %watermark\n")
    assert declared_packages(settings.project_dir) == ["watermark==2.5.0", "tqdm==4.70.1", "Seaborn==0.13.2"]
    # what setup.sh installs: one pin a line
    printed = subprocess.run([sys.executable, "-m", "grader.core.environment", str(settings.project_dir)],
                             capture_output=True, text=True, check=True).stdout
    assert printed.splitlines() == ["watermark==2.5.0", "tqdm==4.70.1", "Seaborn==0.13.2"]


@pytest.mark.parametrize("pins, error", [('["seaborn"]', "'seaborn' is not a pinned package: write name==version"),
                                         ('["seaborn>=0.13"]', "'seaborn>=0.13' is not a pinned package")])
def test_an_unpinned_package_is_refused_with_the_form(make_toy: Callable[..., Settings], pins: str,
                                                      error: str) -> None:
    settings = make_toy()
    toml = _declare(settings, pins)
    with pytest.raises(ChallengeError, match=error) as raised:
        load_challenge(settings.project_dir, "toy")
    assert raised.value.path == str(toml)


def test_packages_txt_errors_name_the_line_and_two_versions_are_refused(make_toy: Callable[..., Settings]) -> None:
    settings = make_toy()
    listing = settings.project_dir / "packages.txt"
    listing.write_text("tqdm==4.70.1\ntimm\n")
    with pytest.raises(ChallengeError, match="line 2: 'timm' is not a pinned package") as raised:
        declared_packages(settings.project_dir)
    assert raised.value.path == str(listing)
    listing.write_text("tqdm==4.70.1\n")
    _declare(settings, '["TQDM==4.66.0"]')
    with pytest.raises(ChallengeError, match="TQDM==4.66.0 in challenges/toy/challenge.toml and tqdm==4.70.1 "
                                             "in packages.txt: pin one version"):
        declared_packages(settings.project_dir)
    printed = subprocess.run([sys.executable, "-m", "grader.core.environment", str(settings.project_dir)],
                             capture_output=True, text=True)
    assert printed.returncode == 2 and "pin one version" in printed.stderr


def test_students_read_what_is_installed() -> None:
    tqdm = installed_version("tqdm")
    assert tqdm is not None  # a dependency of the stack
    lines = environment_lines([f"tqdm=={tqdm}", "watermark==0.0.1"])
    assert lines[0] == f"Python {sys.version.split()[0]}"
    assert f"numpy {installed_version('numpy')}" in lines and f"torch {installed_version('torch')}" in lines
    assert lines[-2:] == [f"tqdm {tqdm} (added by the coach)",
                          "watermark 0.0.1 (added by the coach; not installed yet: run setup.sh)"]


@pytest.mark.parametrize("cid", challenge_ids(REPO))
def test_every_brief_names_the_packages_its_challenge_adds(cid: str) -> None:
    challenge = load_challenge(REPO, cid)
    brief = (REPO / "challenges" / cid / "README.md").read_text(encoding="utf-8").replace("\n", " ")
    said = ", ".join(f"`{p}`" for p in challenge.environment.packages) or "none for this challenge"
    assert "## Environment" in brief and f"the packages the coach adds: {said}." in brief, (
        f"challenges/{cid}/README.md: its Environment section should say 'the packages the coach adds: {said}.'")
