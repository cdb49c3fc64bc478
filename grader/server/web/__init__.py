"""The event server's pages: the app, its routes per audience (``routes/``), signing in,
receiving uploads, security headers and connection limits.

Modules:

- ``answers``: Written questions and the teams' answers as the event server lists them.
- ``app``: The event server's pages.
- ``boards``: An event's leaderboards and cohort from its stored results (pure).
- ``bundle``: Check what a team uploads before it is queued, and bundle a notebook with its new
  images.
- ``flash``: Messages that outlive a redirect (post/redirect/get).
- ``guard``: uvicorn's h11 protocol with the header and body read timeouts of
  :class:`ConnectionLimits`.
- ``headers``: The security headers of every response of the event server, and its last catch of
  errors.
- ``ladder``: The Ladder.
- ``limits``: How long ``grader serve`` waits for a client, how many connections it holds at once,
  and how it runs behind an HTTPS proxy (:class:`ProxyOptions`).
- ``marks``: The coach's grades of written answers as the pages use them.
- ``nbverdict``: Whether an uploaded file reads as a notebook, in bounded memory (standard library
  only.
- ``options``: How the event server's app serves one event (:class:`AppOptions`).
- ``pages``: What every page of the event server shares.
- ``precheck``: Checks of an uploaded notebook before it takes a slot.
- ``receive``: An upload form received as its body arrives, its limits counted as bytes come, its
  files on disk.
- ``signin``: Signing in and out of the event server.
- ``similar``: The coach's similar pairs of an event.
- ``routes/``: its own package (its face says what it holds).

Other packages import through this face (``from grader.server.web import NAME``): the names of
``__init__.pyi`` beside it.
"""

from __future__ import annotations

import lazy_loader

# the names of the stub beside this file, each imported when first used (lazy_loader, Scientific
# Python's SPEC 1): importing the package costs nothing at start-up
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
