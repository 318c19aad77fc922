"""Dead-letter records: the rejected bytes, unchanged, with the reason in Kafka headers.

Keeping the value byte-for-byte lets an operator fix the producer and replay the record; the
headers say why it was rejected and where it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["DeadLetter"]

_MAX_DETAIL = 1000


@dataclass(frozen=True)
class DeadLetter:
    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    rejected_at: datetime

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            ("omnistream.reason", self.reason.encode()),
            ("omnistream.detail", self.detail[:_MAX_DETAIL].encode()),
            ("omnistream.topic", self.topic.encode()),
            ("omnistream.partition", str(self.partition).encode()),
            ("omnistream.offset", str(self.offset).encode()),
            ("omnistream.rejected_at", self.rejected_at.isoformat().encode()),
        ]

    @classmethod
    def from_headers(cls, headers: list[tuple[str, bytes]] | dict[str, bytes]) -> DeadLetter:
        items = dict(headers.items() if isinstance(headers, dict) else headers)

        def get(name: str) -> str:
            return items[f"omnistream.{name}"].decode()

        return cls(
            reason=get("reason"),
            detail=get("detail"),
            topic=get("topic"),
            partition=int(get("partition")),
            offset=int(get("offset")),
            rejected_at=datetime.fromisoformat(get("rejected_at")),
        )
