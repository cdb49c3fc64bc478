"""Fixtures of the command-line tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from grader.core.settings import Settings


@pytest.fixture
def toy_env(make_toy: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The toy project as the CLI finds it (environment variables)."""
    settings = make_toy()
    monkeypatch.setenv("GRADER_PROJECT_DIR", str(settings.project_dir))
    monkeypatch.setenv("GRADER_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("GRADER_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.delenv("GRADER_SANDBOX_UID", raising=False)
    return settings
