"""The channel agents in the harness: the real dispatcher on memory stores and scripted providers.

Consent, address, caps, expiry, dedup and fallback are the dispatcher's own code
(``channels/dispatcher.py``); only the stores (``storage/memory.py``) and the providers differ.
A ``ScriptedProvider`` succeeds, or fails permanently with the reason a scenario gives for its
channel; receipts that come later (bounces, opens) are written as ``message_*`` events in the
events file, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from omnistream.channels.dispatcher import Dispatcher
from omnistream.channels.settings import ChannelSettings
from omnistream.domain.vocabulary import CHANNELS
from omnistream.policies.caps import CapsPolicy
from omnistream.ports import (
    Outgoing,
    ProviderError,
    ProviderResult,
    Receipt,
    ReceiptRejected,
)
from omnistream.storage.memory import MemoryCapStore, MemoryDedupStore

__all__ = ["HARNESS_CHANNEL_SETTINGS", "Delivery", "ScriptedProvider", "build_dispatcher"]

HARNESS_CHANNEL_SETTINGS = ChannelSettings.model_construct(retry_attempts=1)
"""The channel defaults (not the environment's), with one provider attempt: scripted providers
answer the same every time."""


@dataclass(frozen=True)
class Delivery:
    """The delivery model of a run: provider failures per channel and the caps policy."""

    fail: Mapping[str, str] = field(default_factory=dict)
    """Channel -> the permanent reason its provider fails every send with."""
    caps: CapsPolicy = field(default_factory=CapsPolicy)


class ScriptedProvider:
    """A provider that answers as scripted and never touches the network."""

    def __init__(self, name: str, failure: str | None = None) -> None:
        self.name = name
        self._failure = failure

    async def send(self, outgoing: Outgoing) -> ProviderResult:
        if self._failure is not None:
            raise ProviderError(self._failure, transient=False)
        return ProviderResult(provider_message_id=f"sim:{outgoing.send_id}")

    def parse_receipt(
        self, headers: Mapping[str, str], body: bytes, url: str, now: datetime
    ) -> list[Receipt]:
        raise ReceiptRejected(404, "scripted providers take receipts from the events file")

    async def aclose(self) -> None:
        return None


async def _no_sleep(_seconds: float) -> None:
    return None


def build_dispatcher(delivery: Delivery, clock: Callable[[], datetime]) -> Dispatcher:
    """A dispatcher for every channel, on memory stores, with the harness's clock and no waits."""
    providers = {ch: ScriptedProvider(f"scripted_{ch}", delivery.fail.get(ch)) for ch in CHANNELS}
    dedup = MemoryDedupStore()
    return Dispatcher(
        providers=providers,
        dedup=dedup,
        caps_store=MemoryCapStore(dedup),
        caps=delivery.caps,
        settings=HARNESS_CHANNEL_SETTINGS,
        sleep=_no_sleep,
        clock=clock,
        rand=lambda: 0.0,
    )
