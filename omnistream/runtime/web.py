"""HTTP routes on the worker's internal listener (Faust's web server): /metrics, /health, /ready.

Every route here needs a bearer token (``runtime/web_auth.py``); the public listener answers
``/health`` and ``/ready`` too, with the verdict only (``runtime/listeners.py``).

- ``/health`` is liveness: the process answers and its app has neither crashed nor begun to stop.
  It does not look at Kafka or Redis, so an outage of either never makes an orchestrator restart
  healthy workers in a loop.
- ``/ready`` is readiness: partitions assigned, table recovery done (no rebalance in progress),
  Redis reachable. 503 until all three hold.
- ``/metrics`` refreshes the gauges read from Faust's state (lag, assignment, timers) and then
  renders the catalog's registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from omnistream import __version__
from omnistream.observability.metrics import REGISTRY
from omnistream.runtime import observers

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["health", "install", "readiness"]


def health(runtime: Runtime) -> dict[str, Any]:
    """What /health reports: alive unless the app crashed or is stopping."""
    app = runtime.app
    uptime = observers.uptime_seconds(runtime)
    alive = not app.should_stop
    return {
        "status": "ok" if alive else "stopping",
        "live": alive,
        "version": __version__,
        "uptime_seconds": None if uptime is None else round(uptime, 3),
    }


async def readiness(runtime: Runtime) -> dict[str, Any]:
    """What /ready reports: partitions assigned, recovery done, Redis reachable."""
    app = runtime.app
    assigned = (
        sorted(f"{tp.topic}:{tp.partition}" for tp in app.assignor.assigned_actives())
        if app.assignor
        else []
    )
    recovered = app.tables.recovery.completed.is_set() and not app.rebalancing
    redis_ok = await observers.ping_redis(runtime)
    return {
        "ready": bool(assigned) and recovered and redis_ok,
        "assigned_partitions": len(assigned),
        "recovery_done": recovered,
        "redis": redis_ok,
        "journeys": {j.id: j.version for j in runtime.catalog.journeys.values()},
    }


def install(runtime: Runtime) -> None:
    app = runtime.app

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        observers.refresh(runtime)
        body = generate_latest(REGISTRY)
        return web.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health_page(web: Any, request: Any) -> Any:
        report = health(runtime)
        return web.json(report, status=200 if report["live"] else 503)

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        report = await readiness(runtime)
        return web.json(report, status=200 if report["ready"] else 503)
