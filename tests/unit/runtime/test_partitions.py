"""Which source records the customer agent may handle in place."""

from __future__ import annotations

import itertools

from aiokafka.structs import TopicPartition as TP

from omnistream.clock import utcnow
from omnistream.runtime.partitions import OwnedPartitions, partition_of
from omnistream.sources.demo import demo_events, source_key

TOPIC = "omni.customer-events"


def owned(*partitions: int) -> OwnedPartitions:
    result = OwnedPartitions(TOPIC, 4)
    result.assigned(
        [TP(TOPIC, p) for p in partitions] + [TP("omni.events.site", 3), TP("x-changelog", 3)]
    )
    return result


def test_only_partitions_of_the_customer_topic_count() -> None:
    assert owned(0, 1).owned == frozenset({0, 1})


def test_a_record_in_its_customers_owned_partition_is_handled_here() -> None:
    key = b"cust-42"
    home = partition_of(key, 4)
    assert owned(home).handles_here(key, home)


def test_a_record_outside_its_customers_partition_is_forwarded() -> None:
    key = b"cust-42"
    home = partition_of(key, 4)
    everything = owned(0, 1, 2, 3)
    assert [p for p in range(4) if everything.handles_here(key, p)] == [home]


def test_a_partition_this_worker_does_not_own_is_forwarded() -> None:
    key = b"cust-42"
    home = partition_of(key, 4)
    others = owned(*(p for p in range(4) if p != home))
    assert not others.handles_here(key, home)


def test_nothing_is_handled_here_after_a_revocation() -> None:
    key = b"cust-42"
    home = partition_of(key, 4)
    partitions = owned(0, 1, 2, 3)
    partitions.revoked()
    assert not partitions.handles_here(key, home)


def test_the_demo_keys_records_as_the_readme_asks() -> None:
    """By ``customer_id``, or ``anon:<anonymous_id>`` (not the bare id) before sign-in."""
    keys = [source_key(raw) for _, raw in itertools.islice(demo_events(50, 3, utcnow), 300)]
    assert None in keys  # the deliberately broken records
    known = [k for k in keys if k is not None]
    assert any(k.startswith(b"anon:") for k in known)
    assert any(not k.startswith(b"anon:") for k in known)
