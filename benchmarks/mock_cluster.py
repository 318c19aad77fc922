"""librdkafka's mock cluster as a second Kafka-protocol broker for the latency benchmark.

The confluent-kafka wheel (dev extra) embeds librdkafka, whose client can host an in-process
mock cluster (``test.mock.num.brokers``) that other clients reach over loopback TCP. It keeps
records in memory, answers fetches as soon as records arrive and serves consumer groups, but
has no CreateTopics: topics are created on first use with 4 partitions, so workers run against
it with ``OMNISTREAM_DECLARE_TOPICS=false`` and ``OMNISTREAM_PARTITIONS=4``.

``python -m benchmarks.mock_cluster`` holds one open and prints ``bootstrap <host:port>``;
``start()`` runs that as a child process (it dies with us) and returns it as an
``EmbeddedServer``.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from pathlib import Path

from omnistream import devstack

PARTITIONS = 4  # librdkafka's mock creates every topic with this many partitions
WORKER_ENV = {"OMNISTREAM_DECLARE_TOPICS": "false", "OMNISTREAM_PARTITIONS": str(PARTITIONS)}


def start(log_dir: Path, timeout: float = 20.0) -> devstack.EmbeddedServer:
    """A fresh mock cluster (one broker) in a child process, once it listens."""
    log_path = log_dir / f"mock-cluster-{time.monotonic_ns()}.log"
    proc, log = devstack.spawn(
        "mock-cluster", [sys.executable, "-u", "-m", "benchmarks.mock_cluster"], log_path=log_path
    )
    server = devstack.EmbeddedServer("mock-cluster", proc, "", 0, log_path, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(rb"^bootstrap 127\.0\.0\.1:(\d+)$", log_path.read_bytes(), re.M)
        if found:
            server.port = int(found.group(1))
            server.url = f"kafka://127.0.0.1:{server.port}"
            devstack.wait_for_port(server.port, timeout, proc)
            return server
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    server.stop()
    raise devstack.DevStackError(f"the mock cluster did not start: see {log_path}")


def _serve() -> None:
    from confluent_kafka import Producer  # dev extra; imported only in the child

    lines: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("librdkafka")
    logger.addHandler(_Keep())
    logger.setLevel(logging.DEBUG)
    # The mock cluster lives as long as this client; "bootstrap.servers" is ignored, and a
    # notice names the cluster's address ("... ignored and replaced with 127.0.0.1:PORT").
    host = Producer({"test.mock.num.brokers": 1, "bootstrap.servers": "unused:1", "logger": logger})
    while True:
        host.poll(0.1)
        found = [m for line in lines if (m := re.search(r"replaced with (\S+)", line))]
        if found:
            print(f"bootstrap {found[0].group(1)}", flush=True)
            break
    while True:
        host.poll(1.0)


if __name__ == "__main__":
    _serve()
