"""A challenge's brief (its ``README.md``) as HTML for the team's page: CommonMark rendered by
markdown-it-py with raw HTML off, so a ``<script>`` or any other tag in the Markdown is shown as
text, never passed through.

Links keep markdown-it's own check (``MarkdownIt.validateLink``: no ``javascript:``, ``vbscript:``,
``file:`` or ``data:`` URL but ``data:image/gif|png|jpeg|webp``; such a link stays plain text). An
image becomes a link to it, its alternative text the link's words: the pages' Content-Security-Policy
(``img-src 'self' data:``, :mod:`grader.server.web.headers`) would block an image of another site and
the server serves none of the challenge's own, so an ``<img>`` could only show as a broken icon.
"""

from __future__ import annotations

import functools

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markupsafe import Markup

__all__ = ["brief_html"]


def _images_as_links(state: StateCore) -> None:
    """Replace each image of the inline tokens by a link to it with the words ``image: ALT``."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children: list[Token] = []
        for token in block.children:
            if token.type != "image":
                children.append(token)
                continue
            opened = Token("link_open", "a", 1, attrs={"href": str(token.attrGet("src") or "")})
            words = Token("text", "", 0, content=f"image: {token.content}" if token.content else "image")
            children += [opened, words, Token("link_close", "a", -1)]
        block.children = children


@functools.cache
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False})
    md.core.ruler.push("images_as_links", _images_as_links)
    return md


def brief_html(markdown: str) -> Markup:
    """``markdown`` (CommonMark) as HTML, safe to put in a page: raw HTML off (escaped as text),
    links checked by markdown-it (module docstring), images as links."""
    return Markup(_parser().render(markdown))  # markdown-it escapes every text; raw HTML is off
