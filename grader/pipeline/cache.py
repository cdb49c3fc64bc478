"""The result cache of ``grader check`` and the event server: finished results by content address.

The key (:func:`cache_key`) hashes everything a result depends on: the team's files, the
challenges, the dataset listing, the grader's own source and the grading options; an unchanged
submission is not run again.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from grader import __version__
from grader.core import Settings
from grader.intake import Submission
from grader.pipeline.grade import GradeOptions
from grader.score import SubmissionResult

__all__ = ["CACHE_FOLDER", "EXTRAS", "ResultCache", "cache_key", "cached_result", "project_digest", "render_extras",
           "warm_keys", "with_render_extras"]

CACHE_FOLDER = "results"


@cache
def _source_digest() -> str:
    """Hash of the grader's own code and templates: a new grader grades anew."""
    root = Path(__file__).resolve().parent.parent  # grader/, from grader/pipeline/cache.py
    h = hashlib.sha256(__version__.encode())
    for path in sorted([*root.rglob("*.py"), *root.rglob("*.j2")]):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def warm_keys(settings: Settings) -> None:
    """Compute the parts of :func:`cache_key` that stay the same while a process runs (the grader's
    source, the project's challenges, the coach's packages, the data's listing: each once per
    process), so that the first job does not pay them: ``grader serve`` calls it before it listens,
    or its workers computed them in the server's interpreter during the first uploads (about 12 ms
    for the source alone here, twice when two workers raced for it; issue 28).

    Raises:
        ConfigError: the data folder is not set or does not exist (as :func:`cache_key` would).
    """
    _source_digest()
    project_digest(settings.project_dir)
    _packages_digest(settings.project_dir)
    _data_digest(settings.require_data_dir(), settings.project_dir)


def _hash_file(h: Any, path: Path, label: str) -> None:
    h.update(f"\0{label}\0".encode())
    h.update(path.read_bytes() if path.is_file() else b"<missing>")


def cache_key(submission: Submission, settings: Settings, options: GradeOptions) -> str:
    """The content address of a submission's result (sha256, hex).

    Hashes: the submission's name, the notebooks it grades, what intake ignored or found wrong,
    and every one of the team's files (:attr:`~grader.intake.submissions.Submission.files`: path and bytes,
    helper files included, since a notebook may read them); for every challenge
    (``challenge.toml``, its rubric, its hidden split file); the dataset folder's listing
    (every file name and size under the challenge sources); the grader's version and source;
    the profile, challenge override, device and sandbox; whether it is a practice check; the
    installed version of every package the coach added.
    """
    h = hashlib.sha256()
    h.update(json.dumps([submission.name, options.profile, options.challenge, options.device,
                         options.sandbox.kind, _source_digest(),
                         *(["practice"] if options.practice else [])]).encode())
    h.update(json.dumps([[str(nb.relative_to(submission.root)) for nb in submission.notebooks],
                         str(submission.new_images.relative_to(submission.root))
                         if submission.new_images else None,
                         list(submission.ignored), list(submission.problems)]).encode())
    for rel in submission.files:
        h.update(b"\0file:" + os.fsencode(rel) + b"\0")
        try:
            with open(submission.root / rel, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
        except OSError:
            h.update(b"<missing>")
    h.update(project_digest(settings.project_dir).encode())
    h.update(_packages_digest(settings.project_dir).encode())
    h.update(_data_digest(settings.require_data_dir(), settings.project_dir).encode())
    return h.hexdigest()


@cache
def project_digest(project: Path) -> str:
    """Every challenge's ``challenge.toml``, rubric, hidden split and public split file (once per
    process)."""
    from grader.core import challenge_ids, load_challenge, rubric_file

    h = hashlib.sha256()
    for cid in challenge_ids(project):  # the project's and, where it includes them, the shipped ones
        challenge = load_challenge(project, cid)
        splits = challenge.folder.parent
        _hash_file(h, challenge.folder / "challenge.toml", f"challenge:{cid}")
        _hash_file(h, rubric_file(project, challenge.rubric), f"rubric:{cid}")
        if challenge.dataset.hidden_split:
            _hash_file(h, splits / challenge.dataset.hidden_split, f"split:{cid}")
        if challenge.dataset.public_split:
            _hash_file(h, splits / challenge.dataset.public_split, f"public:{cid}")
        if challenge.dataset.practice_split:
            _hash_file(h, splits / challenge.dataset.practice_split, f"practice:{cid}")
    return h.hexdigest()


@cache
def _packages_digest(project: Path) -> str:
    """The installed version of every package the coach added (:mod:`grader.core.environment`),
    once per process: a package installed or upgraded by setup.sh grades anew."""
    from grader.core import declared_packages, installed_version

    return json.dumps([(pin, installed_version(pin.split("==", 1)[0])) for pin in declared_packages(project)])


@cache
def _data_digest(data_dir: Path, project: Path) -> str:
    """Names and sizes of every file of every challenge's data sources (once per process)."""
    from grader.core import challenge_ids, load_challenge

    h = hashlib.sha256()
    sources: set[str] = set()
    for cid in challenge_ids(project):
        ds = load_challenge(project, cid).dataset
        sources.update([ds.source, *ds.extra])
        if ds.added_class is not None:
            sources.add(ds.added_class.source)
        if ds.idx is not None:  # the idx files' system folder, used when <data dir>/<source> lacks them
            sources.add(ds.idx.system_dir)
    for source in sorted(sources):
        for dirpath, dirnames, filenames in os.walk(data_dir / source):
            dirnames.sort()
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                h.update(f"{os.path.relpath(path, data_dir)}\0{os.path.getsize(path)}\n".encode())
    return h.hexdigest()


EXTRAS = "extras.json"  # what result.json leaves out and a scorecard draws: the loss plots, the thumbnails


def render_extras(result: SubmissionResult) -> list[dict[str, Any]]:
    """Per notebook of ``result``, what ``result.json`` leaves out but a scorecard draws (the
    grader's and the notebook's own loss plot, each new image's thumbnail): kept beside a cached
    result so that its scorecard can be drawn again (the coach's grades of written answers applied,
    :mod:`grader.report.written`) without running the notebook."""
    return [{"loss_plot_svg": nb.loss_plot_svg, "notebook_loss_plot": nb.notebook_loss_plot,
             "thumbnails": {im.file: im.thumbnail for im in nb.new_images if im.thumbnail}}
            for nb in result.notebooks]


def with_render_extras(result: SubmissionResult, extras: object) -> SubmissionResult:
    """``result`` with :func:`render_extras` put back (``extras`` as read from JSON: the grader's
    own file, still checked for shape; anything else leaves ``result`` as it is)."""
    if not isinstance(extras, list) or len(extras) != len(result.notebooks):
        return result
    notebooks = []
    for nb, extra in zip(result.notebooks, extras, strict=True):
        if not isinstance(extra, dict):
            return result
        found = extra.get("thumbnails")
        thumbs: dict[str, Any] = found if isinstance(found, dict) else {}
        svg, own = extra.get("loss_plot_svg"), extra.get("notebook_loss_plot")
        images = [im.model_copy(update={"thumbnail": thumbs[im.file]})
                  if isinstance(thumbs.get(im.file), str) else im for im in nb.new_images]
        notebooks.append(nb.model_copy(update={"loss_plot_svg": svg if isinstance(svg, str) else "",
                                               "notebook_loss_plot": own if isinstance(own, str) else "",
                                               "new_images": images}))
    return result.model_copy(update={"notebooks": notebooks})


class ResultCache:
    """Finished results by content address: ``CACHE_DIR/results/<key>/{result.json,scorecard.html}``,
    ``extras.json`` (:func:`render_extras`) and ``team_scorecard.html`` where the event server
    stored the team's view beside them."""

    def __init__(self, settings: Settings) -> None:
        self.root = settings.cache_dir / CACHE_FOLDER

    def get(self, key: str) -> tuple[SubmissionResult, str] | None:
        """The result stored under ``key`` (with its :func:`render_extras` where stored) and its
        scorecard, or None."""
        folder = self.root / key
        try:
            result = SubmissionResult.model_validate_json((folder / "result.json").read_text())
            scorecard = (folder / "scorecard.html").read_text()
        except (OSError, ValueError):
            return None
        try:
            result = with_render_extras(result, json.loads((folder / EXTRAS).read_text()))
        except (OSError, ValueError):
            pass  # stored before extras were: its scorecard is still the one rendered then
        return result, scorecard

    def team_scorecard(self, key: str) -> str | None:
        """The team's scorecards of a cached result (:func:`grader.report.render.render_team_scorecards`,
        or the one team scorecard an older version stored), or None where none was stored."""
        try:
            return (self.root / key / "team_scorecard.html").read_text()
        except OSError:
            return None

    def put(self, key: str, result: SubmissionResult, scorecard: str, *,
            team_scorecard: str | None = None) -> None:
        from grader.core import write_atomic

        folder = self.root / key
        write_atomic(folder / "scorecard.html", scorecard)
        write_atomic(folder / EXTRAS, json.dumps(render_extras(result)))
        if team_scorecard is not None:
            write_atomic(folder / "team_scorecard.html", team_scorecard)
        write_atomic(folder / "result.json", result.model_dump_json(indent=2))  # last: it marks the entry whole

    def keep(self, key: str, result: SubmissionResult, scorecard: str, *,
             team_scorecard: str | None = None) -> bool:
        """:meth:`put` ``result``, unless a notebook's run was cancelled (``GradeOptions.cancel``):
        a cancelled run says nothing of the submission, and is never reused. Returns whether it
        was stored."""
        if any(nb.execution.status == "cancelled" for nb in result.notebooks):
            return False
        self.put(key, result, scorecard, team_scorecard=team_scorecard)
        return True


def cached_result(submission: Submission, settings: Settings, options: GradeOptions) -> SubmissionResult | None:
    """The cached result of ``submission`` graded with ``options`` (its :func:`cache_key`), with its
    :func:`render_extras`, or None where the cache holds none: what ``grader check --grades``
    applies the coach's grades to, without running any notebook."""
    hit = ResultCache(settings).get(cache_key(submission, settings, options))
    return hit[0] if hit is not None else None
