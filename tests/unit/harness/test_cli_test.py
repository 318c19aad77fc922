"""``omnistream journeys test``: PASS per file, or FAIL with a readable diff and exit 1."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from omnistream.harness.cli import journeys

JOURNEYS = Path(__file__).resolve().parents[3] / "journeys"
GOLDEN = JOURNEYS / "scenarios" / "abandoned_cart_purchase.yaml"


def test_a_passing_scenario_exits_0() -> None:
    result = CliRunner().invoke(journeys, ["test", str(GOLDEN), "--dir", str(JOURNEYS)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"PASS {GOLDEN}", "-- 1 passed, 0 failed"]


def test_a_wrong_expectation_prints_a_diff_and_exits_1(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.yaml"
    text = GOLDEN.read_text(encoding="utf-8").replace("T11:00:00", "T12:00:00")
    wrong.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(journeys, ["test", str(wrong), "--dir", str(JOURNEYS)])
    assert result.exit_code == 1
    assert f"FAIL {wrong}" in result.output
    assert "  -send 2026-03-02T12:00:00+00:00 push_reminder mobile_push" in result.output
    assert "  +send 2026-03-02T11:00:00+00:00 push_reminder mobile_push" in result.output
    assert "-- 0 passed, 1 failed" in result.output


def test_every_golden_passes_through_the_command() -> None:
    result = CliRunner().invoke(journeys, ["test", "--dir", str(JOURNEYS)])
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output
