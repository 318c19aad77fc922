"""`make bench` / `python -m benchmarks [--quick]`: every figure in one run, printed and saved.

Starts the embedded broker and Redis once; each section reports medians of repeated runs.
Nothing here asserts a time: it measures and prints. CI does not run it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from omnistream import devstack
from omnistream.clock import utcnow

SECTIONS = [
    "baselines", "pipeline", "latency", "agent", "produce", "engine", "channels", "state",
    "timers", "rss", "broadcasts",
]  # fmt: skip


def _section(
    name: str, broker: str, redis: str, workdir: Path, quick: bool, earlier: dict[str, Any]
) -> dict[str, Any]:
    """Run one section; ``earlier``: the results of the sections before it in this run."""
    module = importlib.import_module(f"benchmarks.bench_{name}")
    if name == "latency":  # at half the rate the pipeline section sustained, when it ran
        rate = earlier.get("pipeline", {}).get("latency_rate_per_s")
        result: dict[str, Any] = module.run(broker, redis, workdir, quick=quick, rate=rate)
    elif name in ("baselines",):
        result = module.run(broker, workdir, quick=quick)
    elif name in ("produce",):
        result = module.run(broker, quick=quick)
    elif name in ("pipeline", "timers", "rss", "broadcasts"):
        result = module.run(broker, redis, workdir, quick=quick)
    else:
        result = module.run(quick=quick)
    return result


def _ratios(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    base = results.get("baselines", {})
    pipe = results.get("pipeline", {})
    engine = results.get("engine", {})
    ratios: dict[str, float] = {}
    rate = pipe.get("pipeline_1_worker_per_s")
    if rate and base.get("faust_noop_agent_per_s"):
        ratios["pipeline / faust no-op"] = rate / base["faust_noop_agent_per_s"]
    if base.get("faust_table_write_agent_per_s") and base.get("faust_noop_agent_per_s"):
        ratios["faust table write / no-op"] = (
            base["faust_table_write_agent_per_s"] / base["faust_noop_agent_per_s"]
        )
    if rate and base.get("faust_table_write_agent_per_s"):
        ratios["pipeline / faust table write"] = rate / base["faust_table_write_agent_per_s"]
    if rate and base.get("raw_aiokafka_consume_per_s"):
        ratios["pipeline / raw aiokafka"] = rate / base["raw_aiokafka_consume_per_s"]
    if rate and pipe.get("pipeline_1_worker_unkeyed_per_s"):
        ratios["keyed / unkeyed sources"] = rate / pipe["pipeline_1_worker_unkeyed_per_s"]
    if rate and pipe.get("pipeline_2_workers_per_s"):
        ratios["2 workers / 1 worker"] = pipe["pipeline_2_workers_per_s"] / rate
    agent = results.get("agent", {})
    cpu = pipe.get("pipeline_1_worker_cpu_us_per_event")
    if cpu and agent.get("agent_code_cpu_us_per_event"):
        ratios["our code / worker CPU per event"] = agent["agent_code_cpu_us_per_event"] / cpu
    if rate and engine.get("engine_events_per_s"):
        ratios["pure engine / pipeline"] = engine["engine_events_per_s"] / rate
    return ratios


def _print(results: dict[str, dict[str, Any]], ratios: dict[str, float]) -> None:
    print()
    print(f"{'section':<10} {'figure':<40} {'value':>14}")
    print("-" * 66)
    for section, figures in results.items():
        for name, value in figures.items():
            if isinstance(value, float | int) and not isinstance(value, bool):
                print(f"{section:<10} {name:<40} {value:>14,.1f}")
    print("-" * 66)
    for name, value in ratios.items():
        print(f"{'ratio':<10} {name:<40} {value:>14.3f}")
    for name, sizes in _batch_sizes(results).items():
        shares = ", ".join(f"{bound} {share:.0%}" for bound, share in sizes.items())
        print(f"batches with at most N inputs, {name}: {shares}")


def _batch_sizes(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The batch size distribution of the first drain and of the first fresh-broker latency
    run (1 worker): full speed against half the rate."""
    found: dict[str, dict[str, float]] = {}
    drains = results.get("pipeline", {}).get("pipeline_1_worker_batch_sizes") or []
    if drains:
        found["drain, 1 worker"] = drains[0]
    live = results.get("latency", {}).get("latency_runs", {}).get("fresh_1w") or []
    if live and live[0].get("batch_sizes"):
        found["half rate, 1 worker"] = live[0]["batch_sizes"]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="smaller runs, one repeat")
    parser.add_argument("--only", choices=SECTIONS, action="append")
    parser.add_argument("--out", type=Path, default=Path("bench-results.json"))
    args = parser.parse_args()
    sections = args.only or SECTIONS
    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, str] = {}
    workdir = Path(tempfile.mkdtemp(prefix="omnistream-bench-"))
    with devstack.embedded(workdir) as (broker, redis):
        for name in sections:
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            started = time.monotonic()
            try:
                results[name] = _section(name, broker.url, redis.url, workdir, args.quick, results)
            except Exception:  # one broken section must not hide the others' figures
                errors[name] = traceback.format_exc()
                print(errors[name], file=sys.stderr)
            print(f"[bench] {name} done in {time.monotonic() - started:.0f}s", file=sys.stderr)
    ratios = _ratios(results)
    _print(results, ratios)
    report = {
        "measured_at": utcnow().isoformat(),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "quick": args.quick,
        "results": results,
        "ratios": ratios,
        "errors": errors,
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\nwritten to {args.out}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
