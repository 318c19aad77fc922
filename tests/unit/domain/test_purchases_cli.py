"""``omnistream purchases fit``: BG/NBD parameters from exported profiles (JSON lines)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from click.testing import CliRunner

from omnistream.cli import cli
from omnistream.journey.segments import Scores

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)


def _profile(rng: random.Random) -> dict[str, object]:
    first = AS_OF - timedelta(days=rng.uniform(30, 365))
    repeats = rng.choice([0, 0, 1, 2, 3, 5, 8])
    last = first + timedelta(days=rng.uniform(0, (AS_OF - first).days)) if repeats else first
    orders = {
        "count": repeats + 1,
        "first_order_at": first.isoformat(),
        "last_order_at": last.isoformat(),
    }
    return {"orders": orders}


def test_fit_prints_a_block_for_the_segments_file(tmp_path: Path) -> None:
    rng = random.Random(3)
    lines = [json.dumps(_profile(rng)) for _ in range(300)]
    lines.insert(5, json.dumps({"key": "c1", "profile": _profile(rng)}))  # a whole row
    lines.insert(7, "{not json")
    lines.insert(9, "[1, 2]")
    lines.insert(11, json.dumps({"traits": {}}))  # no orders: not an error, not counted
    lines.insert(12, "")
    export = tmp_path / "profiles.jsonl"
    export.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(
        cli, ["purchases", "fit", str(export), "--as-of", AS_OF.isoformat()]
    )
    assert result.exit_code == 0, result.output
    assert f"{export}:8: not JSON" in result.stderr
    assert f"{export}:10: expected a JSON object" in result.stderr
    assert "# 301 customers, 2 lines skipped" in result.stdout
    block = yaml.safe_load("\n".join(result.stdout.splitlines()[1:]))
    scores = Scores.model_validate(block["scores"])  # pastes into segments.yaml as it is
    assert scores.purchase_model.r > 0 and scores.purchase_model.alpha > 0


def test_fit_refuses_an_export_without_buyers(tmp_path: Path) -> None:
    export = tmp_path / "empty.jsonl"
    export.write_text('{"traits": {}}\n')
    result = CliRunner().invoke(cli, ["purchases", "fit", str(export)])
    assert result.exit_code == 1
    assert "no customer with an order" in result.stderr


def test_fit_needs_an_aware_as_of(tmp_path: Path) -> None:
    export = tmp_path / "p.jsonl"
    export.write_text("")
    result = CliRunner().invoke(cli, ["purchases", "fit", str(export), "--as-of", "2026-06-01"])
    assert result.exit_code == 2 and "ISO time with a zone" in result.stderr
