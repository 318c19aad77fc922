from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from omnistream.harness.cli import journeys  # the group with simulate and test mounted

JOURNEYS = Path(__file__).resolve().parents[3] / "journeys"


def test_validate_accepts_the_samples() -> None:
    result = CliRunner().invoke(journeys, ["validate", str(JOURNEYS)])
    assert result.exit_code == 0, result.output
    assert "abandoned_cart" in result.output and "journey(s) valid" in result.output


def test_validate_reports_file_line_and_hint_on_stderr(tmp_path: Path) -> None:
    shutil.copy(JOURNEYS / "lab_results.yaml", tmp_path / "lab_results.yaml")
    path = tmp_path / "lab_results.yaml"
    path.write_text(path.read_text().replace("[mobile_push, email]", "[mobile_psh, email]"))
    result = CliRunner().invoke(journeys, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{path}:15: " in result.stderr
    assert result.stderr.rstrip().endswith("1 error(s)")
    assert "unknown channel 'mobile_psh' (did you mean 'mobile_push'?)" in result.stderr


def test_graph_prints_mermaid() -> None:
    result = CliRunner().invoke(journeys, ["graph", "lab_results", "--dir", str(JOURNEYS)])
    assert result.exit_code == 0
    assert result.output.startswith("flowchart TD\n")
    assert "notify --> finish" in result.output


def test_graph_unknown_id_suggests() -> None:
    result = CliRunner().invoke(journeys, ["graph", "lab_result", "--dir", str(JOURNEYS)])
    assert result.exit_code == 1 and "did you mean 'lab_results'?" in result.stderr


def test_simulate_prints_the_timeline(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = [
        {"type": "lab_results_ready", "source": "crm", "timestamp": "2026-03-05T14:00:00Z"},
        {"type": "message_opened", "timestamp": "2026-03-05T14:30:00Z"},
    ]
    events.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"traits": {"first_name": "Anna"}}))
    args = ["simulate", "lab_results", "--events", str(events), "--profile", str(profile)]
    result = CliRunner().invoke(journeys, [*args, "--dir", str(JOURNEYS)])
    assert result.exit_code == 0, result.output
    assert "send   lab_results notify mobile_push" in result.output
    assert "exit   lab_results completed" in result.output
    assert result.output.rstrip().endswith("-- 1 send(s), 1 exit(s), 0 goal(s)")
    rerun = CliRunner().invoke(journeys, [*args, "--dir", str(JOURNEYS)])
    assert rerun.output == result.output


def test_simulate_rejects_bad_jsonl(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"type": "x", "timestamp": "2026-03-05T14:00:00Z"}\nnot json\n')
    args = ["simulate", "lab_results", "--events", str(events), "--dir", str(JOURNEYS)]
    result = CliRunner().invoke(journeys, args)
    assert result.exit_code == 1 and f"{events}:2: invalid JSON" in result.stderr
