"""Shared fixtures: a toy challenge on synthetic images (built by tests/support/toy.py), notebooks built in memory."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from grader.core.settings import Settings
from tests.support.pg import database_url, postgres_server, postgres_url  # noqa: F401  (fixtures: a throwaway PostgreSQL)
from tests.support.toy import build_toy

REPO = Path(__file__).resolve().parent.parent


def real_data_dir() -> Path | None:
    """The real datasets: $GRADER_DATA_DIR, else ../shared/datasets beside the checkout."""
    candidate = os.environ.get("GRADER_DATA_DIR") or str(REPO.parent / "shared" / "datasets")
    path = Path(candidate)
    return path if (path / "gear").is_dir() else None


@pytest.fixture
def make_toy(tmp_path: Path) -> Callable[..., Settings]:
    """Build a toy project under ``tmp_path`` (see :func:`tests.support.toy.build_toy`)."""

    def build(**options: object) -> Settings:
        return build_toy(tmp_path, **options)  # type: ignore[arg-type]

    return build


@pytest.fixture
def copy_tree() -> Callable[[Path, Path], Path]:
    def copy(src: Path, dst: Path) -> Path:
        shutil.copytree(src, dst)
        return dst

    return copy


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-goldens", action="store_true",
                     help="rewrite the golden files under tests/golden from the current output")


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))
