"""Kafka transport security from ``OMNISTREAM_KAFKA_*`` variables, for Faust and aiokafka alike.

Why this exists: ``faust.SASLCredentials`` without an ``ssl_context`` quietly means
``SASL_PLAINTEXT``, so a deployment that sets a user and password and nothing else sends them,
and every event, in clear text. Here the protocol is stated once, the SSL context is always built
for the ``*SSL`` protocols (aiokafka's ``create_ssl_context``: system trust store unless a CA file
is given, optional client certificate for mTLS), and SASL over plaintext with a password is
refused unless ``OMNISTREAM_KAFKA_ALLOW_PLAINTEXT_SASL=true`` says someone meant it.

``faust_kwargs()`` goes into ``faust.App``; ``aiokafka_kwargs()`` into any aiokafka client (the
``topics`` admin command uses it). Both come from the same object, so they cannot disagree.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["KafkaSecurity"]

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSecurity(BaseSettings):
    """How workers and tools authenticate to Kafka and encrypt the connection."""

    model_config = SettingsConfigDict(
        env_prefix="OMNISTREAM_KAFKA_", env_file=".env", extra="ignore", frozen=True
    )

    security_protocol: Protocol = "PLAINTEXT"
    sasl_mechanism: Mechanism = "SCRAM-SHA-512"
    username: str | None = None
    password: SecretStr | None = None
    cafile: Path | None = None
    """CA bundle that signed the brokers' certificates; the system store when unset."""
    certfile: Path | None = None
    """Client certificate (PEM) for mTLS; needs ``keyfile``."""
    keyfile: Path | None = None
    key_password: SecretStr | None = None
    check_hostname: bool = True
    allow_plaintext_sasl: bool = False

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @model_validator(mode="after")
    def _coherent(self) -> KafkaSecurity:
        if (self.certfile is None) != (self.keyfile is None):
            raise ValueError("mTLS needs both OMNISTREAM_KAFKA_CERTFILE and _KEYFILE")
        if self.uses_sasl and (not self.username or self.password is None):
            raise ValueError(f"{self.security_protocol} needs a username and a password")
        if not self.uses_sasl and (self.username or self.password is not None):
            raise ValueError(
                f"a Kafka username/password is set but security_protocol is "
                f"{self.security_protocol}, which would ignore it: use SASL_SSL"
            )
        if not self.uses_tls and (self.cafile or self.certfile):
            raise ValueError(
                f"TLS files are set but security_protocol is {self.security_protocol}, "
                "which would ignore them: use SSL or SASL_SSL"
            )
        if (
            self.security_protocol == "SASL_PLAINTEXT"
            and self.password is not None
            and not self.allow_plaintext_sasl
        ):
            raise ValueError(
                "SASL_PLAINTEXT sends the password and every event unencrypted: use SASL_SSL, "
                "or set OMNISTREAM_KAFKA_ALLOW_PLAINTEXT_SASL=true if the network is trusted"
            )
        return self

    def _secret(self) -> str:
        if self.password is None:  # unreachable after validation; keeps -O builds honest
            raise ValueError(f"{self.security_protocol} needs a password")
        return self.password.get_secret_value()

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for ``SSL``/``SASL_SSL`` (verifying brokers), else ``None``."""
        if not self.uses_tls:
            return None
        from aiokafka.helpers import create_ssl_context

        try:
            context: ssl.SSLContext = create_ssl_context(
                cafile=str(self.cafile) if self.cafile else None,
                certfile=str(self.certfile) if self.certfile else None,
                keyfile=str(self.keyfile) if self.keyfile else None,
                password=self.key_password.get_secret_value() if self.key_password else None,
            )
        except (OSError, ssl.SSLError) as exc:  # the bare errors do not name the file
            files = {"cafile": self.cafile, "certfile": self.certfile, "keyfile": self.keyfile}
            named = ", ".join(f"{k}={v}" for k, v in files.items() if v)
            raise ValueError(f"cannot load the Kafka TLS files ({named}): {exc}") from exc
        context.check_hostname = self.check_hostname
        return context

    def aiokafka_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for AIOKafkaProducer/Consumer/AdminClient."""
        kwargs: dict[str, Any] = {"security_protocol": self.security_protocol}
        context = self.ssl_context()
        if context is not None:
            kwargs["ssl_context"] = context
        if self.uses_sasl:
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self._secret(),
            )
        return kwargs

    def faust_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``faust.App`` (empty for PLAINTEXT)."""
        import faust

        if self.security_protocol == "PLAINTEXT":
            return {}
        context = self.ssl_context()
        if not self.uses_sasl:
            return {"broker_credentials": faust.SSLCredentials(context)}
        credentials = faust.SASLCredentials(
            username=self.username,
            password=self._secret(),
            mechanism=self.sasl_mechanism,
            ssl_context=context,  # this, and only this, makes Faust say SASL_SSL
        )
        expected = self.security_protocol
        if credentials.protocol.value != expected:  # Faust changed its inference: fail loudly
            raise RuntimeError(f"Faust would use {credentials.protocol.value}, not {expected}")
        return {"broker_credentials": credentials}
