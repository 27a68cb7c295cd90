"""Device text made safe to show: control characters and bidi overrides become visible escapes.

Keys, values, topic levels and names reach the screens as the device (or a policy author) chose
them. Markup is escaped where it is interpreted (Rich in the TUI, HTML and Markdown in reports);
this module handles what every edge shares: characters that change how the surrounding text
looks. A right-to-left override (U+202E) can make ``temperature_gpj.exe`` read as a different
key, an isolate can hide text, an ESC starts a terminal escape sequence, a newline forges a row.
Each such character is shown as ``\\u202e`` instead, so a customer sees that it is there.
"""

from __future__ import annotations

import re

__all__ = ["neutralise"]

# C0 controls and DEL, C1 controls, and the format characters that reorder or hide text:
# ALM, zero-width space/joiners, LRM/RLM, line/paragraph separators, the embeddings and overrides
# U+202A-U+202E, word joiner and invisible operators U+2060-U+2064, the isolates U+2066-U+2069,
# the deprecated format controls U+206A-U+206F and the BOM / zero-width no-break space.
_HIDDEN = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]"
)
_HIDDEN_KEEP_LINES = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff]"
)


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def neutralise(text: str, *, lines: bool = False) -> str:
    """``text`` with every control, bidi and invisible format character written as ``\\uXXXX``.

    ``lines=True`` keeps newlines (for our own multi-line texts that embed device text)."""
    pattern = _HIDDEN_KEEP_LINES if lines else _HIDDEN
    return pattern.sub(_escape, text)
