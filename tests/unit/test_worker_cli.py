"""``omnistream worker`` on a fresh checkout or container: the data directory is made for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from omnistream.cli import cli, ensure_data_dir
from omnistream.config import Settings


def test_data_dir_is_created_with_its_parents(tmp_path: Path) -> None:
    nested = tmp_path / "var" / "worker"  # neither level exists, as on a fresh clone
    ensure_data_dir(nested)
    assert nested.is_dir()
    ensure_data_dir(nested)  # and again: nothing to do


def test_an_impossible_data_dir_is_one_clear_line_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    journeys = tmp_path / "journeys"
    journeys.mkdir()
    env = {"OMNISTREAM_DATA_DIR": str(blocker / "worker"), "OMNISTREAM_JOURNEYS_DIR": str(journeys)}
    result = CliRunner().invoke(cli, ["worker"], env=env)
    assert result.exit_code == 1
    assert "cannot create the data directory" in result.output
    assert "OMNISTREAM_DATA_DIR" in result.output
    assert "Traceback" not in result.output


def test_channels_from_the_environment_are_a_comma_separated_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As the README writes it: OMNISTREAM_CHANNELS=email,sms (pydantic-settings parsed it as JSON
    and refused to start)."""
    monkeypatch.setenv("OMNISTREAM_CHANNELS", "email, sms")
    assert Settings().channels == ("email", "sms")
    monkeypatch.setenv("OMNISTREAM_CHANNELS", "email,carrier_pigeon")
    with pytest.raises(ValidationError, match="carrier_pigeon"):
        Settings()
