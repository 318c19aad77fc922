"""HTTP routes on the worker's Faust web server: /metrics, /health, /ready."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from omnistream.observability.metrics import REGISTRY

if TYPE_CHECKING:
    from omnistream.runtime.app import Runtime

__all__ = ["install", "readiness"]


async def readiness(runtime: Runtime) -> dict[str, Any]:
    """What /ready reports: partitions assigned, recovery done, Redis reachable."""
    app = runtime.app
    assigned = (
        sorted(f"{tp.topic}:{tp.partition}" for tp in app.assignor.assigned_actives())
        if app.assignor
        else []
    )
    recovered = app.tables.recovery.completed.is_set() and not app.rebalancing
    redis_ok = False
    if runtime.redis is not None:
        try:
            redis_ok = bool(await runtime.redis.ping())
        except Exception:  # any Redis failure means "not ready", reported below
            redis_ok = False
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
        body = generate_latest(REGISTRY)
        return web.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/health")
    async def health(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/ready")
    async def ready(web: Any, request: Any) -> Any:
        report = await readiness(runtime)
        return web.json(report, status=200 if report["ready"] else 503)
