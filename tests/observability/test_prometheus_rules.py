"""Alert rules and scrape config, checked and unit-tested with promtool (installed if needed)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from omnistream.observability import catalog
from omnistream.observability.promql import metric_names

from .promtool import ROOT, run

PROM = ROOT / "deploy" / "prometheus"
RUNBOOK = ROOT / "docs" / "observability.md"


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((PROM / "alerts.yml").read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_promtool_check_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", str(PROM / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_promtool_check_config(promtool: str, tmp_path: Path) -> None:
    """promtool checks that the scrape token's file exists: give it one, in a copy."""
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(PROM / name, tmp_path / name)
    job = yaml.safe_load((PROM / "prometheus.yml").read_text())["scrape_configs"][0]
    token_file = tmp_path / job["authorization"]["credentials_file"]
    result = run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode != 0 and "credentials" in result.stdout + result.stderr
    token_file.parent.mkdir(parents=True)
    token_file.write_text("t" * 32 + "\n")
    result = run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_test_rules(promtool: str) -> None:
    result = run(promtool, "test", "rules", str(PROM / "alerts_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules_catches_a_wrong_expectation(promtool: str, tmp_path: Path) -> None:
    """The harness can fail: drop one firing alert from the expectations and promtool objects."""
    shutil.copy(PROM / "alerts.yml", tmp_path / "alerts.yml")
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text())
    tests["tests"][0]["alert_rule_test"][-1]["exp_alerts"] = []
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(tests))
    result = run(promtool, "test", "rules", str(tmp_path / "alerts_test.yml"))
    assert result.returncode != 0
    assert "OmnistreamWorkerDown" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load((PROM / "alerts_test.yml").read_text())["tests"]
    firing: set[str] = set()
    silent: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    names = {rule["alert"] for rule in rules()}
    assert names == firing, names ^ firing
    assert names == silent, names ^ silent


def test_alerts_query_only_catalog_metrics_and_have_a_runbook() -> None:
    known = catalog.sample_names() | {"up"}
    runbook = RUNBOOK.read_text()
    for rule in rules():
        names = metric_names(rule["expr"])
        assert names and names <= known, f"{rule['alert']}: unknown {names - known}"
        anchor = rule["annotations"]["runbook"].split("#")[1]
        assert f"### {rule['alert']}" in runbook and anchor == rule["alert"].lower()
        assert rule["labels"]["severity"] in {"warning", "critical"}


def test_scrape_config_loads_the_rules_and_scrapes_metrics() -> None:
    config = yaml.safe_load((PROM / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "omnistream"  # alerts and the dashboard filter on it
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"  # the internal listener wants a token
    assert not Path(job["authorization"]["credentials_file"]).is_absolute()  # next to the file
