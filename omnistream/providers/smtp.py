"""The ``smtp`` provider for ``email``, with aiosmtplib.

The ``Message-ID`` is derived from the send id (``<send_id@domain>``), the closest thing SMTP
has to an idempotency key: receiving systems and mailbox providers collapse duplicates by it.
Reply codes 4xx, timeouts and dropped connections are transient; 5xx and refused recipients
are permanent. A recipient refused because the mailbox does not exist or cannot take mail is the
shared ``address_invalid``: enhanced status 5.1.x (bad mailbox, domain or syntax) or 5.2.1
(mailbox disabled), or, without an enhanced status, the basic codes 550, 551 and 553 (at RCPT
only: a bare 5xx at DATA is more often about the content). Other
refusals (5.7.x policy, 5.2.2 mailbox full...) stay ``recipient_refused``. SMTP has no delivery
callbacks: bounces and opens come through the ``webhook`` receipts of whatever relay reports them.

TLS: without credentials STARTTLS is opportunistic (used when the server offers it), as for any
MTA. With credentials (``OMNISTREAM_SMTP_USERNAME``) the connection must be encrypted before the
password is sent: implicit TLS (``USE_TLS``) or STARTTLS, required; a server that does not offer
STARTTLS, which is also what a man in the middle stripping it looks like, fails the send as
transient ``smtp_tls_unavailable`` (retried, counted by the circuit breaker, then the fallback
channel) and the password never leaves. ``START_TLS=false`` with credentials refuses to start
unless ``ALLOW_PLAINTEXT_AUTH=true`` says the network is trusted. ``CA_FILE`` names the CA bundle
of a relay with a private certificate; certificates are always verified.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Final

import aiosmtplib
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnistream.channels.settings import ChannelSettings
from omnistream.clock import monotonic
from omnistream.config import Settings
from omnistream.observability.metrics import M
from omnistream.ports import Outgoing, ProviderError, ProviderResult
from omnistream.providers.base import ADDRESS_INVALID, NoReceipts
from omnistream.providers.errors import ProviderConfigError

__all__ = [
    "SETTINGS",
    "SmtpProvider",
    "SmtpSettings",
    "from_settings",
    "refusal_reason",
    "tls_required",
]

_ENHANCED: Final = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_NO_MAILBOX_CODES: Final = frozenset({550, 551, 553})


class SmtpSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="OMNISTREAM_SMTP_", env_file=".env", extra="ignore"
    )

    host: str = "127.0.0.1"
    port: int = 25
    username: str | None = None
    password: SecretStr | None = None
    use_tls: bool = False
    """Implicit TLS from the first byte (port 465)."""
    start_tls: bool | None = None
    """None: upgrade when the server offers STARTTLS (required when credentials are set)."""
    allow_plaintext_auth: bool = False
    """Send credentials over an unencrypted connection (a trusted local relay only)."""
    ca_file: Path | None = None
    """CA bundle that signed the server's certificate, when it is not a public CA."""
    sender: str = "omnistream@localhost"
    message_id_domain: str = "omnistream"


class SmtpProvider(NoReceipts):
    name = "smtp"

    def __init__(self, own: SmtpSettings, timeout_s: float = 10.0) -> None:
        self._own = own
        self._timeout_s = timeout_s
        self._tls_required = tls_required(own)

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
        message = self._message(outgoing)
        started = monotonic()
        try:
            await self._deliver(message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            if all(400 <= refused.code < 500 for refused in exc.recipients):
                raise ProviderError("recipient_deferred", transient=True) from None
            reasons = {refusal_reason(r.code, r.message) for r in exc.recipients if r.code >= 500}
            reason = ADDRESS_INVALID if reasons == {ADDRESS_INVALID} else "recipient_refused"
            raise ProviderError(reason, transient=False) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise ProviderError(_response_reason(exc), transient=400 <= exc.code < 500) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            raise ProviderError("connection", transient=True) from None
        finally:
            M.provider_request_seconds.labels(self.name).observe(monotonic() - started)
        return ProviderResult(str(message["Message-ID"]))

    async def _deliver(self, message: EmailMessage) -> None:
        """One SMTP session: connect, secure, log in, send."""
        own = self._own
        client = aiosmtplib.SMTP(
            hostname=own.host,
            port=own.port,
            use_tls=own.use_tls,
            start_tls=False,  # done in _secure, where "not offered" is ours to judge
            timeout=self._timeout_s,
            cert_bundle=str(own.ca_file) if own.ca_file is not None else None,
        )
        async with client:
            await self._secure(client)
            if own.username:
                password = own.password.get_secret_value() if own.password else ""
                await client.login(own.username, password)
            await client.send_message(message)

    async def _secure(self, client: aiosmtplib.SMTP) -> None:
        """STARTTLS when offered; when it is required and not offered, stop before AUTH."""
        if self._own.use_tls or self._own.start_tls is False:
            return
        await client.ehlo()
        if client.supports_extension("starttls"):
            await client.starttls()
        elif self._tls_required:
            raise ProviderError("smtp_tls_unavailable", transient=True)

    async def aclose(self) -> None:
        return None


def refusal_reason(code: int, message: str) -> str:
    """``address_invalid`` when a permanent RCPT refusal says the mailbox cannot exist."""
    enhanced = _ENHANCED.match(message)
    if enhanced is None:
        return ADDRESS_INVALID if code in _NO_MAILBOX_CODES else "recipient_refused"
    subject, detail = enhanced.group(2), enhanced.group(3)
    if subject == "1" or (subject, detail) == ("2", "1"):
        return ADDRESS_INVALID
    return "recipient_refused"


def _response_reason(exc: aiosmtplib.SMTPResponseException) -> str:
    """``address_invalid`` for a permanent DATA refusal whose enhanced status blames the mailbox
    (a server that checks recipients only after the message); else ``smtp_<code>``. A bare 550
    at DATA is more often about the content than the mailbox, so only the enhanced status counts.
    """
    dead = (
        isinstance(exc, aiosmtplib.SMTPDataError)
        and exc.code >= 500
        and _ENHANCED.match(exc.message) is not None
        and refusal_reason(exc.code, exc.message) == ADDRESS_INVALID
    )
    return ADDRESS_INVALID if dead else f"smtp_{exc.code}"


def tls_required(own: SmtpSettings) -> bool:
    """Whether STARTTLS is mandatory; ``ProviderConfigError`` for settings that cannot be safe."""
    if own.use_tls and own.start_tls:
        raise ProviderConfigError(
            "OMNISTREAM_SMTP_USE_TLS and OMNISTREAM_SMTP_START_TLS are exclusive: implicit TLS "
            "(port 465) or STARTTLS (port 587), not both"
        )
    if own.start_tls is True:
        return True
    if not own.username or own.use_tls or own.allow_plaintext_auth:
        return False
    if own.start_tls is False:
        raise ProviderConfigError(
            "OMNISTREAM_SMTP_START_TLS=false with OMNISTREAM_SMTP_USERNAME set would send the "
            "password in clear: use OMNISTREAM_SMTP_USE_TLS=true or leave START_TLS unset, or "
            "set OMNISTREAM_SMTP_ALLOW_PLAINTEXT_AUTH=true for a trusted local relay"
        )
    return True


SETTINGS = SmtpSettings
"""What ``from_settings`` is given as ``own``: read once at start, by ``omnistream worker``."""


def from_settings(
    own: SmtpSettings, settings: Settings, channel_settings: ChannelSettings
) -> SmtpProvider:
    return SmtpProvider(own, channel_settings.provider_timeout_s)
