"""Journey versions that outlive a restart: the ones pinned instances still run on.

A catalog keeps older versions of its journeys in memory (``Catalog.carry_over``, called by hot
reload). A restart loads only the files, so without more an instance that entered v1 would be
moved to v2 at the same step id at the next restart. The worker therefore saves every version
it runs (current and retained) in its data directory after each start and applied reload, and
adds the saved ones back at start (``restore_versions``). Versions are written as validated
JSON, not YAML: the file is the worker's own, read back with the same strict models.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import orjson
from pydantic import ValidationError

from omnistream.journey.model import MAX_RETAINED_VERSIONS, Catalog, Journey

__all__ = ["VERSIONS_FILE", "VersionsError", "restore_versions", "save_versions"]

VERSIONS_FILE: Final = "journeys.versions.json"
"""Its name in ``OMNISTREAM_DATA_DIR``."""

_FORMAT: Final = 1


class VersionsError(Exception):
    """The saved versions cannot be read; the worker runs the files alone and says so."""


def save_versions(catalog: Catalog, path: Path) -> None:
    """Write every version ``catalog`` runs to ``path`` atomically (write, fsync, rename)."""
    journeys = [*catalog.journeys.values(), *catalog.retained.values()]
    data = {
        "format": _FORMAT,
        "journeys": [j.model_dump(mode="json", by_alias=True) for j in journeys],
    }
    staging = path.with_name(f".{path.name}.{os.getpid()}")
    with staging.open("wb") as handle:
        handle.write(orjson.dumps(data))
        handle.flush()
        os.fsync(handle.fileno())
    staging.replace(path)


def restore_versions(catalog: Catalog, path: Path, keep: int = MAX_RETAINED_VERSIONS) -> Catalog:
    """``catalog`` plus the saved versions of its journeys that differ from the current ones.

    A missing file is a first start (nothing to restore). An unreadable one raises
    ``VersionsError``: the caller logs it and runs ``catalog`` as it is, so pinned instances
    continue at the same step id of the current version instead of stopping the worker.
    """
    if not path.exists():
        return catalog
    try:
        data = orjson.loads(path.read_bytes())
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise VersionsError(f"{path}: unknown format")
        saved = [Journey.model_validate(item) for item in data.get("journeys", [])]
    except (OSError, orjson.JSONDecodeError, ValidationError) as exc:
        raise VersionsError(f"{path}: {str(exc).splitlines()[0]}") from None
    return catalog.with_retained(saved, keep)
