"""Snippets: an excerpt of a message around what matched, safe to show as HTML.

Both engines mark the matched words with two private-use characters (``ts_headline``'s
StartSel/StopSel, FTS5's ``snippet()``); ``render`` escapes the text (``&``, ``<``, ``>``,
quotes) and turns the markers into ``<mark>`` and ``</mark>``. Markers are paired, so a
marker character written in a message itself can neither leave a tag open nor close one
that is not. Runs of whitespace become one space, and ``…`` stands where the excerpt cuts
the message.
"""

from __future__ import annotations

import html
import re

START = "\ue000"
STOP = "\ue001"
LESS_THAN = "\ue002"
"""Stands for ``<`` in what ``ts_headline`` reads, which would drop anything tag-like."""
WORDS_AROUND = 20
"""How long an excerpt is: at most this many words (PostgreSQL) or tokens (SQLite)."""

_MARKERS = re.compile(f"([{START}{STOP}])")
_SPACES = re.compile(r"\s+")
ELLIPSIS = "…"


def render(excerpt: str, content: str) -> str:
    """The excerpt as escaped HTML with ``<mark>`` around the matches."""
    excerpt = excerpt.replace(LESS_THAN, "<")
    parts: list[str] = []
    inside = False
    for piece in _MARKERS.split(excerpt):
        if piece == START:
            if not inside:
                parts.append("<mark>")
            inside = True
        elif piece == STOP:
            if inside:
                parts.append("</mark>")
            inside = False
        else:
            parts.append(html.escape(_SPACES.sub(" ", piece)))
    if inside:
        parts.append("</mark>")
    marked = "".join(parts).strip()
    plain = _SPACES.sub(" ", _MARKERS.sub("", excerpt)).strip()
    whole = _SPACES.sub(" ", _MARKERS.sub("", content)).strip()
    head = "" if whole.startswith(plain) else ELLIPSIS + " "
    tail = "" if whole.endswith(plain) else " " + ELLIPSIS
    return head + marked + tail
