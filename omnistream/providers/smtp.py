"""The ``smtp`` provider for ``email``, with aiosmtplib.

The ``Message-ID`` is derived from the send id (``<send_id@domain>``), the closest thing SMTP
has to an idempotency key: receiving systems and mailbox providers collapse duplicates by it.
Reply codes 4xx, timeouts and dropped connections are transient; 5xx and refused recipients
are permanent. SMTP has no delivery callbacks: bounces and opens come through the ``webhook``
receipts of whatever relay reports them.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnistream.channels.settings import ChannelSettings
from omnistream.clock import monotonic
from omnistream.config import Settings
from omnistream.observability.metrics import M
from omnistream.ports import Outgoing, ProviderError, ProviderResult
from omnistream.providers.base import NoReceipts

__all__ = ["SmtpProvider", "SmtpSettings", "from_settings"]


class SmtpSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OMNISTREAM_SMTP_", env_file=".env", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = 25
    username: str | None = None
    password: SecretStr | None = None
    use_tls: bool = False
    start_tls: bool | None = None  # None: upgrade when the server offers STARTTLS
    sender: str = "omnistream@localhost"
    message_id_domain: str = "omnistream"


class SmtpProvider(NoReceipts):
    name = "smtp"

    def __init__(self, own: SmtpSettings, timeout_s: float = 10.0) -> None:
        self._own = own
        self._timeout_s = timeout_s

    def _message(self, outgoing: Outgoing) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._own.sender
        message["To"] = outgoing.address
        message["Subject"] = outgoing.message.subject or ""
        message["Message-ID"] = f"<{outgoing.send_id}@{self._own.message_id_domain}>"
        message["Date"] = formatdate(usegmt=True)
        message["X-Omnistream-Send-Id"] = outgoing.send_id
        message.set_content(outgoing.message.body)
        return message

    async def send(self, outgoing: Outgoing) -> ProviderResult:
        own = self._own
        message = self._message(outgoing)
        started = monotonic()
        try:
            await aiosmtplib.send(
                message,
                hostname=own.host,
                port=own.port,
                username=own.username,
                password=own.password.get_secret_value() if own.password else None,
                use_tls=own.use_tls,
                start_tls=own.start_tls,
                timeout=self._timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(400 <= refused.code < 500 for refused in exc.recipients):
                raise ProviderError("recipient_deferred", transient=True) from None
            raise ProviderError("recipient_refused", transient=False) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise ProviderError(f"smtp_{exc.code}", transient=400 <= exc.code < 500) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            raise ProviderError("connection", transient=True) from None
        finally:
            M.provider_request_seconds.labels(self.name).observe(monotonic() - started)
        return ProviderResult(str(message["Message-ID"]))

    async def aclose(self) -> None:
        return None


def from_settings(settings: Settings, channel_settings: ChannelSettings) -> SmtpProvider:
    return SmtpProvider(SmtpSettings(), channel_settings.provider_timeout_s)
