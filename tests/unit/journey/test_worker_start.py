"""``omnistream worker`` with bad configuration files: one ``file:line`` message and exit code 1,
never a traceback (issues 15.5 and 22: journey files, the caps file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from omnistream.cli import cli
from omnistream.policies.caps import CapsPolicyError, load_caps_policy

from .test_loader import LEGACY

CAPS = """\
enabled: true
per_channel: ["1/day"]
channel_overrides:
  app_inbox: ["5/day", "20000/week"]
"""


def start(tmp_path: Path, **env: str) -> tuple[int, str]:
    base = {
        "OMNISTREAM_JOURNEYS_DIR": str(tmp_path / "journeys"),
        "OMNISTREAM_DATA_DIR": str(tmp_path / "data"),
        "OMNISTREAM_EVENT_LOOP": "asyncio",
    }
    result = CliRunner().invoke(cli, ["worker"], env={**base, **env})
    return result.exit_code, result.output


def test_a_first_start_with_a_bad_journey_file_is_one_line_per_error(tmp_path: Path) -> None:
    (tmp_path / "journeys").mkdir()
    (tmp_path / "journeys" / "cart.yaml").write_text(LEGACY)
    (tmp_path / "journeys" / "deep.yaml").write_text("[" * 400)
    code, output = start(tmp_path)
    assert code == 1 and "Traceback" not in output
    assert f"{tmp_path / 'journeys' / 'deep.yaml'}:1: nested deeper than 50 levels" in output
    assert "no last good journey set to run" in output


def test_a_cap_above_the_limit_names_file_line_and_setting(tmp_path: Path) -> None:
    caps = tmp_path / "caps.yaml"
    caps.write_text(CAPS)
    with pytest.raises(CapsPolicyError) as caught:
        load_caps_policy(caps)
    message = str(caught.value)
    assert message.startswith(f"{caps}:4: channel_overrides.app_inbox.1.limit: ")
    assert "less than or equal to 10000" in message and "exempt_channels" in message


@pytest.mark.parametrize(
    ("name", "content", "line", "fragment"),
    [
        ("caps.yaml", "per_channel: [1/fortnight]\n", 1, "cap window '1/fortnight'"),
        ("caps.yaml", "enabled: true\nper_channel: [unclosed\n", 3, "invalid YAML"),
        ("caps.json", '{"per_channel":\n  ["1/day",]}', 2, "invalid JSON"),
        ("caps.yaml", "per_channel: []\nacross: []\n", 2, "across: Extra inputs"),
    ],
)
def test_other_bad_caps_files_name_their_line(
    tmp_path: Path, name: str, content: str, line: int, fragment: str
) -> None:
    caps = tmp_path / name
    caps.write_text(content)
    with pytest.raises(CapsPolicyError) as caught:
        load_caps_policy(caps)
    assert str(caught.value).startswith(f"{caps}:{line}: ")
    assert fragment in str(caught.value)


def test_the_worker_refuses_a_bad_caps_file_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "journeys").mkdir()
    (tmp_path / "journeys" / "cart.yaml").write_text(LEGACY)
    (tmp_path / "caps.yaml").write_text(CAPS)
    code, output = start(tmp_path, OMNISTREAM_CHANNELS_CAPS_FILE=str(tmp_path / "caps.yaml"))
    assert code == 1 and "Traceback" not in output
    assert f"{tmp_path / 'caps.yaml'}:4: channel_overrides.app_inbox.1.limit" in output
