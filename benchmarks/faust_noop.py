"""A Faust agent that does nothing but count: Faust's own per-record cost on this broker.

Configured like the omnistream worker (raw serializers, our own logging, same broker settings,
same table store: memory), so the comparison with the pipeline is fair. With ``NOOP_TABLE=1``
it also writes each record to a table row (one changelog record per event, as the customer
agent does): the least any pipeline that keeps per-customer state in a Faust table pays.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import faust

from omnistream.observability.logging import setup_logging

setup_logging("WARNING")
TOPIC = os.environ["NOOP_TOPIC"]
COUNT = int(os.environ["NOOP_COUNT"])
RESULT = Path(os.environ["NOOP_RESULT"])
WRITE_TABLE = os.environ.get("NOOP_TABLE") == "1"

app = faust.App(
    f"noop-{TOPIC}",
    broker=os.environ["NOOP_BROKER"],
    autodiscover=False,
    key_serializer="raw",
    value_serializer="raw",
    consumer_auto_offset_reset="earliest",
    broker_rebalance_timeout=3,
    broker_session_timeout=6,
    broker_heartbeat_interval=1,
    web_port=int(os.environ["NOOP_WEB_PORT"]),
    web_bind="127.0.0.1",
    datadir=os.environ["NOOP_DATADIR"],
)
topic = app.topic(TOPIC, key_type=bytes, value_type=bytes)
# declared only when written: the no-op agent has no table to recover
rows = (
    app.Table("rows", default=None, key_type=bytes, value_type=bytes, partitions=4)
    if WRITE_TABLE
    else None
)
state: dict[str, Any] = {"n": 0, "t0": None}


@app.agent(topic, concurrency=1)
async def noop(stream: Any) -> None:
    async for event in stream.events():
        if rows is not None:
            rows[event.key] = event.value
        if state["t0"] is None:
            state["t0"] = time.perf_counter()
        state["n"] += 1
        if state["n"] == COUNT:
            elapsed = time.perf_counter() - state["t0"]
            result = json.dumps({"events_per_s": (COUNT - 1) / elapsed})
            RESULT.write_text(result)  # noqa: ASYNC240 - once, at the very end
            logging.getLogger("noop").warning("done: %d in %.2fs", COUNT, elapsed)


if __name__ == "__main__":
    faust.Worker(
        app, loglevel="WARNING", override_logging=False, quiet=True
    ).execute_from_commandline()
