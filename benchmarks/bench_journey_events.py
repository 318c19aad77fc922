"""What the journey event stream and its stats cost: the pipeline's sustained rate with
``OMNISTREAM_JOURNEY_EVENTS`` on and off (1 worker, keyed demo events), interleaved runs.

    .venv/bin/python -m benchmarks.bench_journey_events [--pairs 3] [--count 20000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from statistics import median
from typing import Any

from benchmarks.bench_pipeline import drain
from omnistream import devstack


def rate_with(broker: str, redis: str, workdir: Path, count: int, stream_on: bool) -> float:
    """The pipeline's sustained rate with the journey-event stream on or off."""
    env = {"OMNISTREAM_JOURNEY_EVENTS": "true" if stream_on else "false"}
    return drain(broker, redis, workdir, 1, count, extra_env=env).rate


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
