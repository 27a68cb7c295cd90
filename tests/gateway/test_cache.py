"""The byte-bounded memo table: what devices send cannot grow it past its limit."""

from __future__ import annotations

from gateway.cache import SizedCache


def _cache(limit: int) -> SizedCache[str, str]:
    return SizedCache(limit, lambda key, value: len(key) + len(value))


def test_the_oldest_entries_go_first_once_the_sizes_pass_the_limit() -> None:
    cache = _cache(10)
    cache.put("a", "1234")  # 5 bytes
    cache.put("b", "1234")  # 10: at the limit, kept
    assert len(cache) == 2 and cache.bytes == 10
    cache.put("c", "12")  # 13: "a" goes
    assert "a" not in cache and cache.get("b") == "1234" and cache.get("c") == "12"
    assert cache.bytes == 8


def test_replacing_a_key_counts_its_new_size_only() -> None:
    cache = _cache(100)
    cache.put("k", "x" * 50)
    cache.put("k", "x" * 10)
    assert cache.bytes == 11 and cache.get("k") == "x" * 10


def test_one_entry_larger_than_the_limit_is_still_kept_alone() -> None:
    # Evicting the entry just put would make every lookup a miss: the newest always stays.
    cache = _cache(5)
    cache.put("a", "1")
    cache.put("big", "x" * 100)
    assert len(cache) == 1 and cache.get("big") == "x" * 100 and cache.get("a") is None


def test_a_flood_of_distinct_keys_stays_within_the_limit() -> None:
    cache = _cache(1000)
    for i in range(10_000):
        cache.put(f"device/{i}", "explanation")
        assert cache.bytes <= 1000
    cache.clear()
    assert len(cache) == 0 and cache.bytes == 0
