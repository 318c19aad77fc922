"""Topics the worker only produces to, created when it first gets partitions.

SREs and tools expect a topic to exist before its first record. Faust creates the internal
topics an agent consumes (its Conductor declares them); a topic that is only produced to
appeared with its first record, auto-created with broker defaults (the DLQ with its first
rejected record). The declaration runs in the first assignment (the signal is awaited inside
the rebalance, before ``/ready`` can say ready) and once per worker and topic; a failure (say,
no CreateTopics ACL) is logged and tried again at the next assignment, never fatal:
``omnistream topics create`` is how production makes them, with their retention.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omnistream.runtime.runtime import Runtime

__all__ = ["declare_at_first_assignment"]

log = logging.getLogger(__name__)


def declare_at_first_assignment(runtime: Runtime, topic: Any) -> None:
    """Declare ``topic`` (a Faust topic) at the worker's first assignment that succeeds."""
    declared = False

    @runtime.app.on_partitions_assigned.connect
    async def _declare(app: Any, assigned: Any, **_: Any) -> None:
        nonlocal declared
        if declared:
            return
        try:
            await topic.maybe_declare()
        except Exception:
            log.warning("could not create the topic %s", topic.get_topic_name(), exc_info=True)
            return
        declared = True
