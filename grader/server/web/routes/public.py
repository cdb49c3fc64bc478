"""The pages every signed-in browser may ask for, a team's or the coach's: ``/leaderboard`` (the
public ranking, or the private one after the Reveal), each challenge's starter notebook and public
data (``/challenges/{id}/starter.ipynb``, ``/challenges/{id}/public-data.zip``), and
``/favicon.ico`` (none: 204). The join pages are :mod:`grader.server.web.signin`'s.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from grader.core import GraderError, challenge_folder
from grader.data import public_data_zip
from grader.server.web.ladder import decimals
from grader.server.web.pages import Refused, Site

__all__ = ["add_public_routes"]

log = logging.getLogger(__name__)


def add_public_routes(app: FastAPI, site: Site) -> None:
    """Add the leaderboard, the challenges' downloads and the favicon of ``site`` to ``app``."""
    settings, opts = site.settings, site.options

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    def challenge_of(request: Request, challenge: str) -> str:
        site.team_or_coach(request)
        if challenge not in site.event_row().challenges:
            raise Refused(404, "No such challenge in this event.")
        return challenge

    @app.get("/challenges/{challenge}/starter.ipynb")
    def starter(request: Request, challenge: str) -> Response:
        folder = challenge_folder(settings.project_dir, challenge_of(request, challenge))  # a coach's or shipped
        path = None if folder is None else folder / "starter.ipynb"
        if path is None or not path.is_file():
            raise Refused(404, "This challenge's starter notebook is not available.")
        return FileResponse(path, filename=f"{challenge}-starter.ipynb", media_type="application/x-ipynb+json")

    zips: dict[str, Path] = {}  # per challenge, its zip once found: the datasets do not change while serving

    @app.get("/challenges/{challenge}/public-data.zip")
    def public_data(request: Request, challenge: str) -> Response:
        challenge_of(request, challenge)
        path = zips.get(challenge)
        if path is None or not path.is_file():
            # built at `grader serve`'s start (grader.server.serve.StartUpWork) and cached on disk by content
            # (grader.data.export): found at once, or waited for while that build runs; built here only where
            # the server was started without it. Its key lists every public file: looked up once per process.
            try:
                path = zips[challenge] = public_data_zip(settings, challenge)
            except (GraderError, OSError) as err:
                log.warning("public data of %s not available: %s", challenge, err)
                raise Refused(404, "This challenge's public data is not available.") from err
        return FileResponse(path, filename=f"{challenge}-public-data.zip", media_type="application/zip")

    @app.get("/leaderboard")
    def leaderboard(request: Request) -> HTMLResponse:
        site.team_or_coach(request)
        boards = site.board_sections(private=site.event_row().revealed, coach_links=False,
                                     places=decimals(opts.eta) - 2)
        return site.page(request, "leaderboard.html.j2", boards=boards, coach_links=False)
