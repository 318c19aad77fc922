"""The worker reads its settings once in the CLI, as one tree, and passes them down (issue 17).

Here rather than in tests/unit: building a Faust app makes event loops, which that folder's
conftest closes after each test.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.journey.model import Catalog
from omnistream.providers.log import LogProviderSettings
from omnistream.providers.registry import ProviderConfigError
from omnistream.runtime.app import build_runtime
from omnistream.worker_settings import read_worker_settings


def test_build_runtime_uses_the_tree_it_is_given() -> None:
    given = ChannelSettings(redis_prefix="passed-down:")
    tree = read_worker_settings(Settings(app_id="settings-down"), given)
    runtime = build_runtime(tree, Catalog())
    assert runtime.channels.settings is given
    assert runtime.settings is tree.core


def test_providers_are_built_from_the_tree_not_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The log provider's redaction comes from the tree, whatever the environment says after."""
    monkeypatch.setenv("OMNISTREAM_PROVIDER_EMAIL", "log")
    tree = read_worker_settings(Settings(app_id="settings-tree", channels=["email"]))
    assert set(tree.provider_settings) == {"log"}
    tree = replace(tree, provider_settings={"log": LogProviderSettings(redact=False)})
    monkeypatch.setenv("OMNISTREAM_PROVIDER_LOG_REDACT", "true")
    runtime = build_runtime(tree, Catalog())
    provider = runtime.channels.providers["log"]
    assert getattr(provider, "_redact", None) is False


def test_only_the_named_providers_settings_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad SMTP variable stops a worker whose email goes through SMTP, at the read, naming
    the variable; it does not concern a worker whose channels use other providers."""
    monkeypatch.setenv("OMNISTREAM_SMTP_PORT", "not-a-port")
    monkeypatch.setenv("OMNISTREAM_PROVIDER_EMAIL", "log")
    assert "smtp" not in read_worker_settings(Settings(channels=["email"])).provider_settings
    monkeypatch.setenv("OMNISTREAM_PROVIDER_EMAIL", "smtp")
    with pytest.raises(ProviderConfigError, match="OMNISTREAM_SMTP_PORT"):
        read_worker_settings(Settings(channels=["email"]))
