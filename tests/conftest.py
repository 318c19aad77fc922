"""Shared fixtures: the real broker and Redis for integration tests.

When ``OMNISTREAM_BROKER`` / ``OMNISTREAM_REDIS_URL`` are set, tests use those servers; otherwise
they start the embedded Tansu broker and redis-server once per test session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from omnistream import devstack

# Property tests run next to integration tests that keep both cores busy: generation speed is
# then a property of the machine's load, not of the code, so that health check is off.
settings.register_profile("omnistream", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("omnistream")


@pytest.fixture(scope="session")
def servers_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def broker_url(servers_log_dir: Path) -> Iterator[str]:
    external = os.environ.get("OMNISTREAM_BROKER")
    if external:
        yield external
        return
    server = devstack.start_broker(servers_log_dir)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(servers_log_dir: Path) -> Iterator[str]:
    external = os.environ.get("OMNISTREAM_REDIS_URL")
    if external:
        yield external
        return
    server = devstack.start_redis(servers_log_dir)
    try:
        yield server.url
    finally:
        server.stop()
