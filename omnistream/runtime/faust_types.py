"""What the runtime uses of Faust, as small Protocols (the Faust boundary typed, issue 17).

Faust ships no type information (mypy sees no types), so these say what the runtime actually reads:
a consumed message's place and bytes, a stream event carrying it, and a table of bytes. The message
and table types are the harness's (``harness/ports.py``), one definition for both; the harness's
``Record`` extends ``Message`` with ``ack`` and non-optional bytes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any, Protocol

from omnistream.harness.ports import Message, Table

__all__ = ["Event", "Message", "Table", "Topic"]


class Topic(Protocol):
    """A topic the runtime produces to (``faust.Topic``): ``send`` returns once the record is in
    the producer's buffer, with the broker's acknowledgement to wait for (``runtime/delivery.py``).
    The harness's ``MemoryTopic`` is one."""

    async def send(
        self, *, key: bytes | None, value: bytes, headers: Sequence[tuple[str, bytes]] = ...
    ) -> Awaitable[Any]: ...


class Event(Protocol):
    """A stream event (``faust.Event``): the runtime reads only its message."""

    @property
    def message(self) -> Message: ...
