"""What a decision lists of a device's fields: each path cut to its bound, each list full at
``LIST_CHARS`` characters with the rest counted (``policies.listing``)."""

from __future__ import annotations

from typing import Any

from policies.listing import (
    LIST_CHARS,
    MAX_KEY_CHARS,
    MAX_PATH_CHARS,
    Listed,
    child,
    collect,
    element,
    leaves,
)


def test_a_short_path_is_the_plain_dotted_name() -> None:
    assert child("", "a") == "a" and child("a", "b") == "a.b"
    assert element("", 3) == "$payload[3]" and element("readings", 2) == "readings[2]"


def test_a_long_key_is_cut_and_marked() -> None:
    got = child("", "k" * 300)
    assert len(got) == MAX_KEY_CHARS and got.endswith("…") and got.startswith("k" * 39)


def test_a_long_path_keeps_its_start_and_its_last_key() -> None:
    prefix = ".".join(f"level{i:02d}" for i in range(30))
    assert len(prefix) > MAX_PATH_CHARS
    got = child(prefix, "last")
    assert len(got) <= MAX_PATH_CHARS and got.startswith("level00.") and got.endswith("….last")
    got = element(prefix, 7)
    assert len(got) <= MAX_PATH_CHARS and got.startswith("level00.") and got.endswith("…[7]")


def test_a_full_list_counts_what_it_does_not_keep() -> None:
    listed = Listed()
    for i in range(1000):
        listed.add(f"f{i:04d}", 5)
    assert listed.total == 1000 and listed.items[0] == "f0000"
    assert len(listed.items) == LIST_CHARS // 5 and listed.more == 1000 - LIST_CHARS // 5


def test_collect_lists_each_leaf_in_input_order_and_counts_past_the_cap() -> None:
    listed = Listed()
    collect({"b": 1, "a": {"c": [1, {}], "d": "x"}}, "", listed)
    assert listed.items == ["b", "a.c[0]", "a.c[1]", "a.d"] and listed.more == 0
    wide: dict[str, Any] = {f"key{i:05d}": i for i in range(5000)}
    listed = Listed()
    collect(wide, "top", listed)
    assert listed.total == 5000 and 0 < len(listed.items) < 5000
    assert listed.chars <= LIST_CHARS + MAX_PATH_CHARS


def test_leaves_lists_every_leaf_unbounded() -> None:
    wide = {f"key{i:05d}": i for i in range(5000)}
    got = leaves(wide, "")
    assert len(got) == 5000 and got[-1] == "key04999"
    assert leaves(7, "") == ["$payload"] and leaves([], "x") == ["x"]
