"""What the runtime uses of Kafka and Faust, as small Protocols the harness implements in memory.

A record (topic, partition, offset, key, value, ack), a producer whose ``send`` returns an
acknowledgement once the record is stored, and a table as a ``MutableMapping[bytes, bytes]``.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Protocol

__all__ = ["Message", "Producer", "Record", "Table"]


class Message(Protocol):
    """A consumed record's place and bytes, as Faust hands it over (``faust.types.Message``)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


class Record(Message, Protocol):
    """One consumed record; ``ack`` marks it handled (the consumer's position may move past it)."""

    @property
    def value(self) -> bytes: ...

    def ack(self) -> None: ...


class Producer(Protocol):
    """Produce ``value`` at ``key``; the returned record is the broker's acknowledgement."""

    def send(self, topic: str, key: bytes | None, value: bytes) -> Record: ...


Table = MutableMapping[bytes, bytes]
