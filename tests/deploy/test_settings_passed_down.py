"""The worker reads its settings once in the CLI and passes them down (issue 17, item 3).

Here rather than in tests/unit: building a Faust app makes event loops, which that folder's
conftest closes after each test.
"""

from __future__ import annotations

from omnistream.channels.settings import ChannelSettings
from omnistream.config import Settings
from omnistream.journey.model import Catalog
from omnistream.runtime.app import build_runtime


def test_build_runtime_uses_the_channel_settings_it_is_given() -> None:
    given = ChannelSettings(redis_prefix="passed-down:")
    runtime = build_runtime(Settings(app_id="settings-down"), Catalog(), given)
    assert runtime.channels.settings is given
