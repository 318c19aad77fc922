"""Journey rollout without restarts: the worker reloads journeys/ when it changes or on SIGHUP.

A new set is loaded and validated as a whole; if any file is invalid, the whole set is refused,
the running set stays active, and the refusal shows in the logs (file:line of every error) and in
``omnistream_journey_reloads_total{result="refused"}``. People already in a journey follow the
journey language's version rules (continue at the same step id, or exit with the reason).
"""

from __future__ import annotations

import hashlib
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omnistream import __version__
from omnistream.journey.loader import JourneyLoadError, load_catalog
from omnistream.journey.model import Catalog
from omnistream.observability.metrics import M

if TYPE_CHECKING:
    from omnistream.runtime.app import Runtime

__all__ = ["catalog_version", "directory_fingerprint", "install", "publish_version", "reload"]

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0


def directory_fingerprint(directory: Path) -> str:
    """Hash of every YAML file's name and content: changes iff the journey set could change."""
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*.yaml")):
        digest.update(str(path.relative_to(directory)).encode())
        try:
            digest.update(path.read_bytes())
        except OSError:  # a file vanishing mid-scan: the next poll sees a stable directory
            digest.update(b"<unreadable>")
    return digest.hexdigest()[:16]


def catalog_version(catalog: Catalog) -> str:
    """One short id for the whole set: each journey's id and content version."""
    digest = hashlib.sha256()
    for journey_id in sorted(catalog.journeys):
        digest.update(f"{journey_id}@{catalog.journeys[journey_id].version};".encode())
    return digest.hexdigest()[:12]


def publish_version(catalog: Catalog) -> None:
    """Expose the running set's version on /metrics (worker_info) and its size by status."""
    M.worker_info.clear()
    M.worker_info.labels(__version__, catalog_version(catalog)).set(1)
    for status in ("active", "paused", "draft"):
        count = sum(1 for j in catalog.journeys.values() if j.status == status)
        M.journeys_active.labels(status).set(count)


def reload(runtime: Runtime) -> str:
    """Try to replace the running journey set; returns applied / unchanged / refused."""
    directory = runtime.settings.journeys_dir
    try:
        catalog = load_catalog(directory)
    except JourneyLoadError as exc:
        for error in exc.errors:
            log.error("journey reload refused: %s", error)
        log.error("journey reload refused: keeping version %s", catalog_version(runtime.catalog))
        M.journey_reloads.labels("refused").inc()
        return "refused"
    except OSError as exc:
        log.error("journey reload refused: cannot read %s: %s", directory, exc)
        M.journey_reloads.labels("refused").inc()
        return "refused"
    if catalog_version(catalog) == catalog_version(runtime.catalog):
        M.journey_reloads.labels("unchanged").inc()
        return "unchanged"
    old = catalog_version(runtime.catalog)
    runtime.catalog = catalog
    publish_version(catalog)
    log.info("journeys reloaded: version %s -> %s", old, catalog_version(catalog))
    M.journey_reloads.labels("applied").inc()
    return "applied"


def install(runtime: Runtime) -> None:
    app = runtime.app
    directory = runtime.settings.journeys_dir
    seen = {"fingerprint": directory_fingerprint(directory) if directory.is_dir() else ""}

    def check() -> None:
        current = directory_fingerprint(directory) if directory.is_dir() else ""
        if current != seen["fingerprint"]:
            seen["fingerprint"] = current
            reload(runtime)

    @app.task
    async def _on_start() -> None:
        publish_version(runtime.catalog)

        def on_sighup(*_: Any) -> None:
            seen["fingerprint"] = directory_fingerprint(directory) if directory.is_dir() else ""
            reload(runtime)

        app.loop.add_signal_handler(signal.SIGHUP, on_sighup)

    @app.timer(interval=POLL_SECONDS)
    async def _poll() -> None:
        check()
