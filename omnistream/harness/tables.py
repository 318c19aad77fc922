"""The customer table in memory: a plain mapping of key bytes to row bytes, like a Faust table."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

__all__ = ["MemoryTable"]


class MemoryTable(MutableMapping[bytes, bytes]):
    """Rows as bytes, as the worker stores them, so the row codec runs on every read and write."""

    def __init__(self) -> None:
        self._rows: dict[bytes, bytes] = {}
        self.writes = 0

    def __getitem__(self, key: bytes) -> bytes:
        return self._rows[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._rows[key] = value
        self.writes += 1

    def __delitem__(self, key: bytes) -> None:
        del self._rows[key]

    def __iter__(self) -> Iterator[bytes]:
        return iter(sorted(self._rows))

    def __len__(self) -> int:
        return len(self._rows)
