"""What the journey event stream and its stats cost: the pipeline's sustained rate with
``OMNISTREAM_JOURNEY_EVENTS`` on and off (1 worker, keyed demo events), interleaved runs.

    .venv/bin/python -m benchmarks.bench_journey_events [--pairs 3] [--count 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.bench_pipeline import prefill, start_fleet
from omnistream import devstack


def rate_with(broker: str, redis: str, workdir: Path, count: int, stream_on: bool) -> float:
    """Events per second from the first input to the last outcome (as ``sustained_rate``)."""
    env = {"OMNISTREAM_JOURNEY_EVENTS": "true" if stream_on else "false"}
    fleet = start_fleet(broker, redis, workdir, 1, extra_env=env)
    try:
        valid = asyncio.run(prefill(broker, fleet.prefix, count, customers=5000))
        started, first = None, 0.0
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            inputs, commands, outcomes = fleet.totals()
            now = time.perf_counter()
            if started is None and inputs > 0:
                started, first = now, inputs
            if inputs >= valid and outcomes >= commands:
                assert started is not None
                rate = (inputs - first) / max(now - started, 1e-9)
                print(f"[bench] journey events {'on' if stream_on else 'off'}: "
                      f"{rate:,.0f} events/s ({int(inputs)} events, {int(commands)} sends)",
                      file=sys.stderr)  # fmt: skip
                return rate
            time.sleep(0.1)
        raise RuntimeError("pipeline did not drain in time")
    finally:
        fleet.stop()


def run(broker: str, redis: str, workdir: Path, pairs: int, count: int) -> dict[str, Any]:
    on: list[float] = []
    off: list[float] = []
    for n in range(pairs):  # interleaved, and the order alternates, so drift hits both
        first_on = n % 2 == 0
        for stream_on in (first_on, not first_on):
            (on if stream_on else off).append(rate_with(broker, redis, workdir, count, stream_on))
    ratios = [a / b for a, b in zip(on, off, strict=True)]
    return {
        "journey_events_on_per_s": median(on),
        "journey_events_off_per_s": median(off),
        "cost_percent": 100 * (1 - median(on) / median(off)),
        "pair_ratios_on_off": ratios,
        "median_pair_cost_percent": 100 * (1 - median(ratios)),
        "runs_on": on,
        "runs_off": off,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-je-"))
    with devstack.embedded(workdir) as (broker, redis):
        result = run(broker.url, redis.url, workdir, args.pairs, args.count)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
