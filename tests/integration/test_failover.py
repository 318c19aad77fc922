"""A worker killed (kill -9) while a provider call hangs: its claim is taken over, not waited out.

The email provider is the ``webhook`` provider pointed at an endpoint in this test that holds
each request until told otherwise. A worker sends one customer's order email into it and is
killed mid-call; the other customers' sends queue behind it on that worker (the channel agent
runs with concurrency 1). A replacement worker must then send everything within 30 s of the
kill (issue 22: it used to wait ~120 s for the dead worker's in-flight marker to lapse), each
send once, except the one that was in flight at the kill: docs/channels.md "Claims" promises
at-least-once for that one (the provider sees it again, with the same ``Idempotency-Key``).

``FAILOVER_TEST_OWNER_LEASE_S=600`` makes the killed worker's lease outlive the test window,
which is the behaviour before the fix (its claim is only waited for): the test then fails.

Known open fault (2026-12-03, reported on issue 22): about 1 run in 5 fails. The replacement's
email agent stops making progress after the failover: in one shape it is ready ~6 s after the
kill, takes the claim over, sends it, commits, and consumes nothing more; in another it sends
two customers and neither takes the claim over nor reads on. The other send commands stay in
``send.email`` (committed offsets show them unread); the failure message lists the topics and
the group's committed offsets. It is not weakened to hide that.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from .conftest import Stack, Worker, wait_until
from .test_durability import envelope, produce
from .test_walking_skeleton import counter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SECRET = "failover-test-secret"
RESUME_WITHIN_S = 30.0
OTHERS = [f"c-{n}" for n in range(1, 6)]
SLOW = "c-slow"
LEASE_S = os.environ.get("FAILOVER_TEST_OWNER_LEASE_S", "10")
JOURNEY = """
id: order_confirmation
name: Order confirmation
trigger: {event: order_placed}
entry: {reentry: always, max_instances: 5}
steps:
  - id: confirm
    type: send
    channels: [email]
    category: transactional
    content:
      email: {subject: "Order", body: "Order {{ event.properties.order_id }}"}
"""


@dataclass(frozen=True)
class Arrival:
    at: float
    """time.monotonic() when the request arrived."""
    send_id: str
    customer_key: str


@dataclass
class Endpoint:
    """The provider's side: every request it got, and how long it holds the next ones."""

    url: str
    hold_s: float = 60.0
    released: threading.Event = field(default_factory=threading.Event)
    arrivals: list[Arrival] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, body: bytes, idempotency_key: str) -> None:
        data = orjson.loads(body)
        with self.lock:
            self.arrivals.append(Arrival(time.monotonic(), idempotency_key, data["customer_key"]))

    def seen(self) -> list[Arrival]:
        with self.lock:
            return list(self.arrivals)

    def customers(self) -> set[str]:
        return {a.customer_key for a in self.seen()}


def _handler(endpoint: Endpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            endpoint.record(body, self.headers.get("Idempotency-Key", ""))
            endpoint.released.wait(endpoint.hold_s)  # a provider that hangs
            answer = orjson.dumps({"id": f"msg-{self.headers.get('Idempotency-Key')}"})
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the caller was killed while we held its request

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    """A local HTTP endpoint in a thread; it releases held requests and stops at teardown."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    state = Endpoint(url=f"http://127.0.0.1:{server.server_address[1]}/messages")
    server.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=server.serve_forever, name="slow-endpoint", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.released.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


def order(customer: str) -> list[bytes]:
    return [
        envelope(f"{customer}-signup", "signed_up", customer,
                 traits={"email": f"{customer}@example.com"}),
        envelope(f"{customer}-o1", "order_placed", customer, order_id=f"{customer}-o1"),
    ]  # fmt: skip


def webhook_env(endpoint: Endpoint) -> dict[str, str]:
    return {
        "OMNISTREAM_PROVIDER_EMAIL": "webhook",
        "OMNISTREAM_WEBHOOK_URL": endpoint.url,
        "OMNISTREAM_WEBHOOK_SECRET": SECRET,
        "OMNISTREAM_CHANNELS_PROVIDER_TIMEOUT_S": "120",  # the hang is not a timeout here
        "OMNISTREAM_CHANNELS_OWNER_LEASE_S": LEASE_S,
    }


def kill_mid_send(stack: Stack, start_worker: Callable[..., Worker], endpoint: Endpoint) -> float:
    """The first worker is inside the provider call of SLOW's email, the others' emails queue
    behind it; kill -9 it then. Returns the kill's time.monotonic()."""
    first = start_worker("w1", **webhook_env(endpoint))
    asyncio.run(produce(stack, order(SLOW)))
    wait_until(lambda: SLOW in endpoint.customers(), 60, "the slow send to reach the endpoint")
    asyncio.run(produce(stack, [r for c in OTHERS for r in order(c)]))
    wait_until(
        lambda: counter(first.metrics(), "omnistream_events_ingested_total") >= 2 + 2 * len(OTHERS),
        30,
        "the others' orders to be ingested",
    )
    time.sleep(1.0)  # their send commands are produced and wait behind the hanging call
    assert endpoint.customers() == {SLOW}, "nothing else went out while the call hung"
    endpoint.hold_s = 0.0  # the provider answers at once from now on
    first.proc.kill()
    killed_at = time.monotonic()
    first.proc.wait(10)
    return killed_at


async def topics_report(stack: Stack) -> str:
    """For a failure message only: every record of the test's topics and the group's committed
    offsets, to tell a send command that was never produced from one that was never consumed."""
    boot = stack.broker_url.removeprefix("kafka://")
    names = [stack.topic(t) for t in ("events.app", "customer-events", "send.email")]
    lines: list[str] = []
    consumer = AIOKafkaConsumer(
        *names, bootstrap_servers=boot, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        while batch := await consumer.getmany(timeout_ms=2000):
            lines += [
                f"{r.topic}[{r.partition}]@{r.offset} key={r.key!r} {r.value[:120]!r}"
                for records in batch.values()
                for r in records
            ]
    finally:
        await consumer.stop()
    group = AIOKafkaConsumer(bootstrap_servers=boot, group_id=stack.app_id)
    await group.start()  # not subscribed: it only reads the group's committed offsets
    try:
        for name in names:
            for p in range(4):
                committed = await group.committed(TopicPartition(name, p))
                lines.append(f"committed {name}[{p}] = {committed}")
    finally:
        await group.stop()
    return "\n".join(sorted(lines))


def test_a_worker_killed_mid_send_is_taken_over_within_30s_and_nothing_is_sent_twice(
    stack: Stack, start_worker: Callable[..., Worker], endpoint: Endpoint
) -> None:
    (stack.journeys_dir / "order_confirmation.yaml").write_text(JOURNEY)
    killed_at = kill_mid_send(stack, start_worker, endpoint)
    [in_flight] = endpoint.seen()

    second = start_worker("w2", ready_timeout=60, **webhook_env(endpoint))
    ready_s = time.monotonic() - killed_at
    everyone = {SLOW, *OTHERS}

    def after_kill() -> list[Arrival]:
        return [a for a in endpoint.seen() if a.at > killed_at]

    def what() -> str:
        seen = sorted(a.customer_key for a in after_kill())
        return (
            f"every send within {RESUME_WITHIN_S:.0f}s of the kill (replacement ready after "
            f"{ready_s:.1f}s); after the kill the endpoint saw {seen}\n"
            f"--- w2 log ---\n{second.log_tail()}\n"
            f"--- topics ---\n{asyncio.run(topics_report(stack))}"
        )

    wait_until(
        lambda: {a.customer_key for a in after_kill()} == everyone,
        max(RESUME_WITHIN_S - (time.monotonic() - killed_at), 0.1),
        what,
    )
    time.sleep(3.0)  # a duplicate would show up now
    arrivals = endpoint.seen()
    per_send = Counter(a.send_id for a in arrivals)
    per_customer = {c: {a.send_id for a in arrivals if a.customer_key == c} for c in everyone}
    resumed = [round(a.at - killed_at, 1) for a in after_kill()]
    print(f"\nreplacement ready {ready_s:.1f}s after the kill; sends at {sorted(resumed)}s")

    assert all(len(ids) == 1 for ids in per_customer.values()), per_customer
    assert per_send[in_flight.send_id] == 2, "the send in flight at the kill is tried once more"
    assert {s: n for s, n in per_send.items() if s != in_flight.send_id and n != 1} == {}
    assert max(resumed) <= RESUME_WITHIN_S
    taken_over = counter(
        second.metrics(), "omnistream_channel_claims_taken_over_total", channel="email"
    )
    assert taken_over == 1
