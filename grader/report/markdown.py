"""Markdown as HTML: a team's written answers (:mod:`grader.intake.answers`) and a challenge's brief,
rendered by markdown-it-py (CommonMark, and GitHub's tables, which the briefs' facts use) with raw
HTML off, for every page that shows them (the scorecards, the grade-by-question page
``answers.html``, the event server's pages).

Safe to put in a page whatever the text holds: raw HTML is off, so a ``<script>`` or any other tag
is shown as text, never passed through; markdown-it escapes every text and attribute; links keep
markdown-it's own check (``MarkdownIt.validateLink``: no ``javascript:``, ``vbscript:``, ``file:``
or ``data:`` URL but ``data:image/gif|png|jpeg|webp``; such a link stays plain text) and get
``rel="nofollow noopener noreferrer"``. An image becomes a link to it, its alternative text the
link's words: the pages allow no image from another site (a script-free Content-Security-Policy),
and an answer's image would be a request the team controls each time the coach opens the page.
"""

from __future__ import annotations

import functools

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup

__all__ = ["markdown_html"]

_REL = "nofollow noopener noreferrer"


def _images_as_links(state: StateCore) -> None:
    """Replace each image of the inline tokens by a link to it with the words ``image: ALT``, and
    mark every link ``rel`` :data:`_REL`."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        for token in block.children:
            if token.type == "link_open":
                token.attrSet("rel", _REL)
            if token.type != "image":
                children.append(token)
                continue
            opened = Token("link_open", "a", 1, attrs={"href": str(token.attrGet("src") or ""), "rel": _REL})
            words = Token("text", "", 0, content=f"image: {token.content}" if token.content else "image")
            children += [opened, words, Token("link_close", "a", -1)]
        block.children = children


@functools.cache
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")  # GFM tables: the briefs' facts are tables
    md.core.ruler.push("images_as_links", _images_as_links)
    return md


def markdown_html(text: str) -> Markup:
    """``text`` (CommonMark, student text) as HTML safe to put in a page (module docstring): raw
    HTML off (escaped as text), links checked by markdown-it and marked ``nofollow``, images as
    links."""
    return Markup(_parser().render(text))  # markdown-it escapes every text; raw HTML is off
