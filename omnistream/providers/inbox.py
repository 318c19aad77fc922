"""The ``inbox`` provider for the ``app_inbox`` channel: the message is kept on the profile.

Nothing is delivered anywhere: the ``message_sent`` outcome carries the rendered message
(``inbox`` property: subject, body, data) to the customer agent, which stores it on the profile,
and the API reads it from there. That keeps the inbox inside the one consistent customer row.
"""

from __future__ import annotations

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.ports import Outgoing, ProviderResult
from omnistream.providers.base import NoReceipts

__all__ = ["SETTINGS", "InboxProvider", "from_settings"]


class InboxProvider(NoReceipts):
    name = "inbox"

    async def send(self, outgoing: Outgoing) -> ProviderResult:
        message = outgoing.message
        return ProviderResult(
            provider_message_id=f"inbox-{outgoing.send_id}",
            properties={
                "inbox": {
                    "subject": message.subject,
                    "body": message.body,
                    "data": dict(message.data),
                }
            },
        )

    async def aclose(self) -> None:
        return None


SETTINGS = None
"""No settings of its own (``from_settings`` is given ``None``)."""


def from_settings(
    own: None, settings: Settings, channel_settings: ChannelSettings
) -> InboxProvider:
    return InboxProvider()
