"""Journey rollout without restarts: the worker reloads journeys/ when it changes or on SIGHUP.

A new set is loaded and validated as a whole; if any file is invalid, the whole set is refused,
the running set stays active, and the refusal shows in the logs (file:line of every error) and in
``omnistream_journey_reloads_total{result="refused"}``. People already in a journey follow the
journey language's version rules (continue at the same step id, or exit with the reason).

Every set the worker runs is also kept as its *last good set* in the data directory
(``OMNISTREAM_DATA_DIR/journeys.last-good/``). A worker that starts while the journeys directory
is invalid runs that set and reports the refusal the same way, so one bad file dropped into a
shared directory cannot crash-loop a fleet; only a worker that has no last good set (a first
start) refuses to start, with every ``file:line`` on stderr and exit code 1.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from omnistream import __version__
from omnistream.config import Settings
from omnistream.journey.loader import (
    MAX_FILE_BYTES,
    POLICIES_FILE,
    JourneyError,
    JourneyLoadError,
    journey_files,
    load_catalog,
)
from omnistream.journey.model import Catalog
from omnistream.journey.segments import SEGMENTS_FILE
from omnistream.journey.versions import (
    VERSIONS_FILE,
    VersionsError,
    restore_versions,
    save_versions,
)
from omnistream.observability.metrics import M

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = [
    "LAST_GOOD_DIR",
    "StartRefused",
    "catalog_version",
    "directory_fingerprint",
    "install",
    "publish_version",
    "reload",
    "starting_catalog",
]

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0
LAST_GOOD_DIR: Final = "journeys.last-good"


class StartRefused(Exception):
    """No valid journey set to start with: ``lines`` say why, one ``file:line`` per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def directory_fingerprint(directory: Path) -> str:
    """Hash of every YAML file's name, size and first bytes: changes iff the set could change.

    Reads at most ``MAX_FILE_BYTES + 1`` of a file, so a huge file dropped into the directory
    costs the two-second poll no more than a valid one (the loader then refuses it by size).
    """
    digest = hashlib.sha256()
    try:
        paths = sorted([*directory.rglob("*.yaml"), *directory.rglob("*.yml")])
    except OSError:  # an unreadable or vanished directory: the load that follows says why
        return "unreadable"
    for path in paths:
        digest.update(str(path.relative_to(directory)).encode())
        try:
            with path.open("rb") as handle:
                digest.update(str(os.fstat(handle.fileno()).st_size).encode())
                digest.update(handle.read(MAX_FILE_BYTES + 1))
        except OSError:  # a file vanishing mid-scan: the next poll sees a stable directory
            digest.update(b"<unreadable>")
    return digest.hexdigest()[:16]


def _load(directory: Path) -> Catalog:
    """``load_catalog``, with a missing directory refused rather than loaded as an empty set
    (an unmounted volume must not end every journey)."""
    if not directory.is_dir():
        message = "journeys directory does not exist (OMNISTREAM_JOURNEYS_DIR)"
        raise JourneyLoadError([JourneyError(str(directory), 1, message)])
    return load_catalog(directory)


def save_last_good(directory: Path, data_dir: Path, catalog: Catalog) -> None:
    """Copy the files of ``catalog``, just loaded from ``directory``, to the last good set.

    The copy is loaded again and kept only if it is the same set (a file may have changed since
    it was loaded); it is written beside the old one and renamed into place, so a crash leaves
    one or the other. A failure (read-only data directory) is logged and costs only the
    fallback at the next start.
    """
    target = data_dir / LAST_GOOD_DIR
    staging = data_dir / f".{LAST_GOOD_DIR}.{os.getpid()}"
    try:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for path in [
            directory / POLICIES_FILE,
            directory / SEGMENTS_FILE,
            *journey_files(directory),
        ]:
            if path.is_file():
                shutil.copyfile(path, staging / path.name)
        if catalog_version(load_catalog(staging)) != catalog_version(catalog):
            raise JourneyLoadError([JourneyError(str(directory), 1, "changed while copied")])
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except (OSError, JourneyLoadError) as exc:
        log.warning("last good journey set not updated in %s: %s", target, exc)
        shutil.rmtree(staging, ignore_errors=True)


def starting_catalog(settings: Settings) -> Catalog:
    """The set a worker starts with: the journeys directory, or else the last good set.

    Raises ``StartRefused`` when the directory is invalid and there is no last good set.
    """
    directory, data_dir = settings.journeys_dir, settings.data_dir
    try:
        catalog = _load(directory)
    except JourneyLoadError as exc:
        catalog = _start_with_last_good(data_dir / LAST_GOOD_DIR, exc.errors)
    else:
        save_last_good(directory, data_dir, catalog)
    return _pinned_versions(catalog, data_dir)


def _pinned_versions(catalog: Catalog, data_dir: Path) -> Catalog:
    """``catalog`` plus the older versions instances may still run on, saved by the previous
    run (``journey/versions.py``), and saves the result for the next start."""
    try:
        catalog = restore_versions(catalog, data_dir / VERSIONS_FILE)
    except VersionsError as exc:
        log.error("saved journey versions not restored, running the files alone: %s", exc)
    _save_versions(catalog, data_dir)
    return catalog


def _save_versions(catalog: Catalog, data_dir: Path) -> None:
    try:
        save_versions(catalog, data_dir / VERSIONS_FILE)
    except OSError as exc:  # a read-only data dir costs only the pinning across a restart
        log.warning("journey versions not saved in %s: %s", data_dir, exc)


def _start_with_last_good(fallback: Path, errors: list[JourneyError]) -> Catalog:
    lines = [str(error) for error in errors]
    if not fallback.is_dir():
        raise StartRefused([*lines, f"{len(errors)} error(s); no last good journey set to run"])
    try:
        catalog = load_catalog(fallback)
    except JourneyLoadError as exc:
        lines += [str(error) for error in exc.errors]
        raise StartRefused([*lines, f"the last good set in {fallback} is invalid too"]) from None
    for line in lines:
        log.error("journeys refused at start: %s", line)
    log.error(
        "journeys refused at start: running the last good set %s from %s",
        catalog_version(catalog),
        fallback,
    )
    M.journey_reloads.labels("refused").inc()
    return catalog


def catalog_version(catalog: Catalog) -> str:
    """One short id for the whole set: each journey's id and content version, and the policies
    (an edit of policies.yaml alone must reload too)."""
    digest = hashlib.sha256(catalog.policies.model_dump_json().encode())
    for journey_id in sorted(catalog.journeys):
        digest.update(f"{journey_id}@{catalog.journeys[journey_id].version};".encode())
    return digest.hexdigest()[:12]


def publish_version(catalog: Catalog) -> None:
    """Expose the running set's version on /metrics (worker_info) and its size by status."""
    M.worker_info.clear()
    M.worker_info.labels(__version__, catalog_version(catalog)).set(1)
    M.journey_versions.clear()
    for journey_id, version, state in catalog.version_rows():
        M.journey_versions.labels(journey_id, version, state).set(1)
    for status in ("active", "paused", "draft"):
        count = sum(1 for j in catalog.journeys.values() if j.status == status)
        M.journeys_active.labels(status).set(count)


def reload(runtime: Runtime) -> str:
    """Try to replace the running journey set; returns applied / unchanged / refused.

    Never raises: it runs on the worker's timer and signal handler, where an exception would
    stop the worker, and the worker would meet the same file again after its restart.
    """
    directory = runtime.settings.journeys_dir
    try:
        catalog = _load(directory)
    except JourneyLoadError as exc:
        for error in exc.errors:
            log.error("journey reload refused: %s", error)
        return _refused(runtime)
    except Exception:  # a loader bug must not take the running set down with it
        log.exception("journey reload refused: loading %s failed", directory)
        return _refused(runtime)
    if catalog_version(catalog) == catalog_version(runtime.catalog):
        M.journey_reloads.labels("unchanged").inc()
        return "unchanged"
    old = catalog_version(runtime.catalog)
    catalog = catalog.carry_over(runtime.catalog)  # people in flight stay on their version
    runtime.catalog = catalog
    _save_versions(catalog, runtime.settings.data_dir)
    publish_version(catalog)
    log.info("journeys reloaded: version %s -> %s", old, catalog_version(catalog))
    M.journey_reloads.labels("applied").inc()
    save_last_good(directory, runtime.settings.data_dir, catalog)
    return "applied"


def _refused(runtime: Runtime) -> str:
    log.error("journey reload refused: keeping version %s", catalog_version(runtime.catalog))
    M.journey_reloads.labels("refused").inc()
    return "refused"


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
