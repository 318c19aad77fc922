"""Provider settings that cannot work safely: the worker refuses to start, with one line.

Kept apart from ``base.py`` (which pulls in aiohttp) so the CLI can name the error it reports
without importing an HTTP client.
"""

from __future__ import annotations

from pydantic import SecretStr

__all__ = ["ProviderConfigError", "require_secret"]


class ProviderConfigError(ValueError):
    """A provider's settings are missing or unsafe. The message is one line naming the env var."""


def require_secret(value: SecretStr | None, variable: str, why: str) -> SecretStr:
    """``value`` if it holds something besides whitespace, else ``ProviderConfigError``.

    ``why`` says what the secret protects, so the operator sees the cost of leaving it empty.
    """
    if value is None or not value.get_secret_value().strip():
        raise ProviderConfigError(f"{variable} is empty: {why}; set it to a long random value")
    return value
