"""What the runtime uses of Faust, as small Protocols (the Faust boundary typed, issue 17).

Faust ships no type information (mypy sees no types), so these say what the runtime actually reads:
a consumed message's place and bytes, a stream event carrying it, and a table of bytes. The table
type is the harness's (``harness/ports.py``), one definition for both; the harness's ``Record`` adds
``ack`` and non-optional bytes, so every harness record is also a ``Message``.
"""

from __future__ import annotations

from typing import Protocol

from omnistream.harness.ports import Table

__all__ = ["Event", "Message", "Table"]


class Message(Protocol):
    """A consumed record as Faust hands it over (``faust.types.tuples.Message``)."""

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


class Event(Protocol):
    """A stream event (``faust.Event``): the runtime reads only its message."""

    @property
    def message(self) -> Message: ...
