"""Device text made visible: characters that hide, reorder or forge text become escapes."""

from __future__ import annotations

import pytest

from gateway.visible import neutralise


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("temperature", "temperature"),
        ("Bäckerei – Öfen ✓", "Bäckerei – Öfen ✓"),  # ordinary non-ASCII stays
        ("temperature_\u202egpj.exe", "temperature_\\u202egpj.exe"),  # right-to-left override
        ("a\u2066hidden\u2069b", "a\\u2066hidden\\u2069b"),  # isolates
        ("\x1b[31mred", "\\u001b[31mred"),  # a terminal escape sequence
        ("row\nforged row", "row\\u000aforged row"),  # a newline forging a row
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("bom\ufeff", "bom\\ufeff"),
        ("c1\x85", "c1\\u0085"),
    ],
)
def test_hidden_characters_are_shown_as_escapes(text: str, shown: str) -> None:
    assert neutralise(text) == shown


def test_our_own_multi_line_texts_keep_their_newlines_only() -> None:
    assert neutralise("line 1\nline 2\r\x1b", lines=True) == "line 1\nline 2\\u000d\\u001b"
