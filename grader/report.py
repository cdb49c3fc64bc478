"""Write a run's outputs: per submission ``scorecard.html`` and ``result.json``, and ``index.html``.

Templates own the HTML (jinja2, autoescape on, ``StrictUndefined``); they receive scorecard
objects, never raw dicts. Every file is written to a temporary name and moved into place, so an
interrupted run never leaves half a result.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from grader.scorecard import SubmissionResult

__all__ = ["render_index", "render_scorecard", "safe_name", "write_index", "write_submission"]


@cache
def _env() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("grader", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = lambda v: f"{100 * v:.1f}%"
    env.filters["pts"] = lambda v: f"{v:g}"
    env.filters["secs"] = lambda v: "–" if v is None else f"{v:.1f} s"
    return env


def safe_name(name: str) -> str:
    """A file-system-safe folder name for a submission."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return cleaned or "submission"


def _cell_colour(count: int, row_total: int) -> str:
    share = count / row_total if row_total else 0.0
    return f"rgba(37, 99, 235, {0.08 + 0.8 * share:.2f})" if count else "transparent"


def render_scorecard(result: SubmissionResult) -> str:
    """The self-contained HTML scorecard of one submission."""
    return str(_env().get_template("scorecard.html.j2").render(r=result, colour=_cell_colour))


def render_index(results: Sequence[SubmissionResult], folders: Sequence[str]) -> str:
    """The HTML overview of a run: one row per submission, pass rate per criterion."""
    rates: dict[str, list[int]] = {}
    for result in results:
        for nb in result.notebooks:
            for c in nb.criteria:
                key = f"{nb.challenge}: {c.title}"
                passed, total = rates.get(key, [0, 0])
                rates[key] = [passed + (c.status == "pass"), total + 1]
    return str(_env().get_template("index.html.j2").render(
        rows=list(zip(results, folders, strict=True)), rates=rates))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_submission(out_dir: Path, result: SubmissionResult, folder: str) -> Path:
    """Write ``out_dir/<folder>/result.json`` and ``scorecard.html``; return the folder."""
    target = out_dir / folder
    _write_atomic(target / "result.json", result.model_dump_json(indent=2))
    _write_atomic(target / "scorecard.html", render_scorecard(result))
    return target


def write_index(out_dir: Path, results: Sequence[SubmissionResult], folders: Sequence[str]) -> Path:
    """Write ``out_dir/index.html`` for the run; return its path."""
    path = out_dir / "index.html"
    _write_atomic(path, render_index(results, folders))
    return path
