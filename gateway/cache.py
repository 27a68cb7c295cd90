"""A dict bounded in bytes: the gateway's memo tables must not grow with what devices send.

The pipeline remembers explanation texts and the log writer remembers texts, bodies and topics
it has stored, so repeated decisions cost a lookup. Their keys hold device-chosen paths and
topics: one 54 KB message of distinct keys at a time, at the permitted rate, grew such tables by
hundreds of MB that were never given back. ``SizedCache`` keeps entries until their sizes (as
the caller estimates them, in bytes) add up to ``limit``, then forgets the oldest first. A
forgotten entry is only recomputed (or looked up in the database) when it is needed again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["SizedCache"]

K = TypeVar("K")
V = TypeVar("V")


class SizedCache(Generic[K, V]):
    """Oldest-first eviction once ``size(key, value)`` summed over the entries passes ``limit``."""

    __slots__ = ("_data", "_size", "bytes", "limit")

    def __init__(self, limit: int, size: Callable[[K, V], int]) -> None:
        self.limit = limit
        self._size = size
        self._data: dict[K, tuple[V, int]] = {}
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: K) -> bool:
        return key in self._data

    def get(self, key: K) -> V | None:
        found = self._data.get(key)
        return None if found is None else found[0]

    def put(self, key: K, value: V) -> None:
        size = self._size(key, value)
        old = self._data.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        self._data[key] = (value, size)
        self.bytes += size
        data = self._data
        while self.bytes > self.limit and len(data) > 1:
            oldest = next(iter(data))
            self.bytes -= data.pop(oldest)[1]

    def clear(self) -> None:
        self._data.clear()
        self.bytes = 0
