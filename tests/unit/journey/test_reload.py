"""Hot reload and worker start with bad journey files (issue 15.5): the running set stays, the
refusal is logged and counted, and a restart runs the last good set instead of crash-looping."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from omnistream.config import Settings
from omnistream.journey.model import Catalog
from omnistream.observability.metrics import REGISTRY
from omnistream.runtime.reload import (
    LAST_GOOD_DIR,
    StartRefused,
    catalog_version,
    directory_fingerprint,
    reload,
    starting_catalog,
)

from .test_loader import LEGACY

BAD_FILES = {
    "deep.yaml": b"[" * 400,
    "latin1.yaml": b"id: caf\xe9\n",
    "policies.yaml": b"quiet_hours: \xff\n",
}


@dataclass
class FakeRuntime:
    """What ``reload`` reads of the runtime: settings and the running set."""

    settings: Settings
    catalog: Catalog


def refusals() -> float:
    labels = {"result": "refused"}
    return REGISTRY.get_sample_value("omnistream_journey_reloads_total", labels) or 0.0


def settings_for(tmp_path: Path) -> Settings:
    journeys = tmp_path / "journeys"
    journeys.mkdir(exist_ok=True)
    return Settings(journeys_dir=journeys, data_dir=tmp_path / "data")


def test_the_first_start_with_a_good_set_keeps_it_as_the_last_good_one(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    (settings.journeys_dir / "cart.yaml").write_text(LEGACY)
    catalog = starting_catalog(settings)
    assert set(catalog.journeys) == {"cart"}
    assert (settings.data_dir / LAST_GOOD_DIR / "cart.yaml").read_text() == LEGACY


@pytest.mark.parametrize(("name", "content"), BAD_FILES.items())
def test_a_reload_with_a_bad_file_keeps_the_running_set(
    tmp_path: Path, name: str, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path)
    (settings.journeys_dir / "cart.yaml").write_text(LEGACY)
    runtime = FakeRuntime(settings, starting_catalog(settings))
    running = catalog_version(runtime.catalog)
    before = refusals()
    (settings.journeys_dir / name).write_bytes(content)
    with caplog.at_level(logging.ERROR, logger="omnistream.runtime.reload"):
        assert reload(cast(Any, runtime)) == "refused"
    assert catalog_version(runtime.catalog) == running
    assert refusals() == before + 1
    assert f"{settings.journeys_dir / name}:" in caplog.text


def test_a_reload_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(tmp_path)
    (settings.journeys_dir / "cart.yaml").write_text(LEGACY)
    runtime = FakeRuntime(settings, starting_catalog(settings))

    def broken(_: Path) -> Catalog:
        raise KeyError("a loader bug")

    monkeypatch.setattr("omnistream.runtime.reload.load_catalog", broken)
    assert reload(cast(Any, runtime)) == "refused"
    assert set(runtime.catalog.journeys) == {"cart"}


def test_a_vanished_directory_is_refused_not_loaded_as_empty(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    (settings.journeys_dir / "cart.yaml").write_text(LEGACY)
    runtime = FakeRuntime(settings, starting_catalog(settings))
    (settings.journeys_dir / "cart.yaml").unlink()
    settings.journeys_dir.rmdir()
    assert reload(cast(Any, runtime)) == "refused"
    assert set(runtime.catalog.journeys) == {"cart"}


def test_an_applied_reload_becomes_the_last_good_set(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    (settings.journeys_dir / "cart.yaml").write_text(LEGACY)
    runtime = FakeRuntime(settings, starting_catalog(settings))
    newer = LEGACY.replace("Your cart", "Still in your cart")
    (settings.journeys_dir / "cart.yaml").write_text(newer)
    assert reload(cast(Any, runtime)) == "applied"
    assert (settings.data_dir / LAST_GOOD_DIR / "cart.yaml").read_text() == newer


def test_a_restart_with_a_bad_file_runs_the_last_good_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path)
    (settings.journeys_dir / "cart.yaml").write_text(LEGACY)
    first = starting_catalog(settings)
    (settings.journeys_dir / "deep.yaml").write_bytes(BAD_FILES["deep.yaml"])
    before = refusals()
    with caplog.at_level(logging.ERROR, logger="omnistream.runtime.reload"):
        again = starting_catalog(settings)
    assert catalog_version(again) == catalog_version(first)
    assert refusals() == before + 1
    assert f"{settings.journeys_dir / 'deep.yaml'}:1: nested deeper than 50" in caplog.text
    assert "running the last good set" in caplog.text


def test_a_first_start_with_a_bad_file_is_refused_with_file_lines(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    (settings.journeys_dir / "cart.yaml").write_text(LEGACY)
    (settings.journeys_dir / "latin1.yaml").write_bytes(BAD_FILES["latin1.yaml"])
    with pytest.raises(StartRefused) as caught:
        starting_catalog(settings)
    assert caught.value.lines[0].startswith(f"{settings.journeys_dir / 'latin1.yaml'}:1: ")
    assert caught.value.lines[-1] == "1 error(s); no last good journey set to run"
    assert not (settings.data_dir / LAST_GOOD_DIR).exists()


def test_the_fingerprint_reads_a_bounded_prefix_of_huge_files(tmp_path: Path) -> None:
    with (tmp_path / "huge.yaml").open("wb") as handle:
        handle.truncate(1 << 30)  # sparse 1 GB
    first = directory_fingerprint(tmp_path)
    with (tmp_path / "huge.yaml").open("r+b") as handle:
        handle.truncate((1 << 30) + 1)
    assert directory_fingerprint(tmp_path) != first  # a size change is still seen


def test_a_policies_only_edit_is_applied(tmp_path: Path) -> None:
    """The set's version covers policies.yaml, so changing only the policies reloads them."""
    settings = settings_for(tmp_path)
    (settings.journeys_dir / "cart.yaml").write_text(LEGACY)
    runtime = FakeRuntime(settings, starting_catalog(settings))
    (settings.journeys_dir / "policies.yaml").write_text("default_timezone: America/New_York\n")
    assert reload(cast(Any, runtime)) == "applied"
    assert runtime.catalog.policies.default_timezone == "America/New_York"


def test_versions_survive_a_reload_and_a_restart(tmp_path: Path) -> None:
    """A customer who entered v1 keeps running on v1 after the file is edited (issue 18): hot
    reload keeps the old version, and the next start restores it from the data directory."""
    settings = settings_for(tmp_path)
    path = settings.journeys_dir / "cart.yaml"
    path.write_text(LEGACY)
    runtime = FakeRuntime(settings, starting_catalog(settings))
    first = runtime.catalog.journeys["cart"].version
    path.write_text(LEGACY.replace("Cart", "Cart, edited"))
    assert reload(cast(Any, runtime)) == "applied"
    second = runtime.catalog.journeys["cart"].version
    assert second != first
    assert ("cart", first, "retained") in runtime.catalog.version_rows()
    restarted = starting_catalog(settings)
    assert ("cart", first, "retained") in restarted.version_rows()
    assert restarted.journeys["cart"].version == second


def test_segments_file_is_part_of_the_last_good_set(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    (settings.journeys_dir / "cart.yaml").write_text(LEGACY)
    (settings.journeys_dir / "segments.yaml").write_text("segments: {}\n")
    starting_catalog(settings)
    assert (settings.data_dir / LAST_GOOD_DIR / "segments.yaml").exists()
