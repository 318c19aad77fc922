"""A send whose claim another worker holds does not stall its channel, and a rebalance does not
wait out a provider's retry sequence (issue 22).

Before: the channel agent (one record at a time) polled the held claim until it finished, lapsed
(``in_flight_ttl_s``, 120 s) or its owner's lease lapsed, and every later send on that channel,
for every customer, queued behind it (a kill during a send made 42 pushes 106-121 s late). Now
the send is put back at the end of its topic after ``held_claim_wait_s`` and the others go on.
The holder here is a live owner that never finishes: a lease and an in-flight marker written to
the worker's Redis as another worker's would be.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from aiokafka import AIOKafkaProducer

from omnistream.domain.commands import Message, Send
from omnistream.redis_keys import owner_lease, send_claim

from .conftest import Stack, Worker, wait_until
from .test_walking_skeleton import counter

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def email(stack: Stack, customer: str) -> Send:
    key = f"{stack.prefix}{customer}"
    return Send(
        send_id=f"{key}-send",
        customer_key=key,
        journey_id="receipts",
        journey_version="1",
        instance_id="1",
        step_id="confirm",
        chain=("email",),
        category="transactional",
        messages={"email": Message(subject="Your order", body="Thanks")},
        addresses={"email": f"{customer}@example.test"},
        caused_by=f"{key}-order",
        caused_at=datetime.now(UTC),
    )


async def produce(stack: Stack, sends: list[Send]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker_url.removeprefix("kafka://"))
    await producer.start()
    try:
        for send in sends:  # one at a time: the held one is first in its partition and topic
            await producer.send_and_wait(
                stack.topic("send.email"), send.to_json(), key=send.customer_key.encode()
            )
    finally:
        await producer.stop()


def sent_ids(stack: Stack) -> list[str]:
    return [str(line["send_id"]) for line in stack.sends()]


def test_a_held_claim_does_not_stall_the_channel_and_is_sent_once_released(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    worker = start_worker("w0", OMNISTREAM_PARTITIONS="1")  # one partition: all in one line
    held, *others = [email(stack, c) for c in ("a", "b", "c", "d", "e")]
    store = redis.Redis.from_url(stack.redis_url)
    lease = owner_lease(stack.redis_prefix, "w-other")
    claim = send_claim(stack.redis_prefix, held.customer_key, held.send_id, 0)
    try:
        store.set(lease, b"1", px=120_000)  # a live owner...
        store.set(claim, b"~w-other/1", px=120_000)  # ...mid-send, for 120 s
        asyncio.run(produce(stack, [held, *others]))

        wanted = {s.send_id for s in others}
        wait_until(
            lambda: wanted <= set(sent_ids(stack)),
            20,
            lambda: f"sends behind the held one: {sent_ids(stack)}\n{worker.log_tail()}",
        )
        assert held.send_id not in sent_ids(stack)  # still held by the live owner
        held_count = counter(
            worker.metrics(),
            "omnistream_channel_sends_put_back_total",
            channel="email",
            reason="claim_held",
        )
        assert held_count >= 1

        store.delete(lease)  # the owner died: its claim is taken over and the send goes out
        wait_until(lambda: held.send_id in sent_ids(stack), 20, lambda: worker.log_tail())
    finally:
        store.delete(lease, claim)
        store.close()
    assert sorted(sent_ids(stack)) == sorted(s.send_id for s in [held, *others])  # each once


class FlakyProvider:
    """A webhook endpoint answering 503 until ``healthy`` is set, counting requests per send."""

    def __init__(self) -> None:
        self.healthy = threading.Event()
        self.lock = threading.Lock()
        self.failed: list[str] = []
        self.delivered: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/messages"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                send_id = self.headers.get("Idempotency-Key", "")
                ok = provider.healthy.is_set()
                with provider.lock:
                    (provider.delivered if ok else provider.failed).append(send_id)
                body = b'{"id": "m-1"}' if ok else b'{"error": "busy"}'
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler


@pytest.fixture
def flaky() -> Iterator[FlakyProvider]:
    provider = FlakyProvider()
    thread = threading.Thread(target=provider.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        provider.server.shutdown()
        provider.server.server_close()
        thread.join(10)


def test_a_rebalance_puts_a_retrying_send_back_instead_of_waiting_for_it(
    stack: Stack, start_worker: Callable[..., Worker], flaky: FlakyProvider
) -> None:
    env = {
        "OMNISTREAM_PROVIDER_EMAIL": "webhook",
        "OMNISTREAM_WEBHOOK_URL": flaky.url,
        "OMNISTREAM_WEBHOOK_SECRET": "rebalance-test-secret",
        "OMNISTREAM_CHANNELS_RETRY_ATTEMPTS": "20",  # 20 attempts, 2-8 s apart: minutes
        "OMNISTREAM_CHANNELS_RETRY_BASE_S": "2",
    }
    first = start_worker("w0", **env)
    send = email(stack, "slow")
    asyncio.run(produce(stack, [send]))
    wait_until(lambda: len(flaky.failed) >= 2, 30, "the send to be retried")

    second = start_worker("w1", **env)  # a rebalance, while the first is between attempts
    wait_until(
        lambda: (
            counter(
                first.metrics(),
                "omnistream_channel_sends_put_back_total",
                channel="email",
                reason="rebalance",
            )
            >= 1
        ),
        30,
        lambda: f"no put-back on the first worker\n{first.log_tail()}",
    )
    flaky.healthy.set()  # the provider recovers: whoever owns the send now delivers it
    wait_until(lambda: send.send_id in flaky.delivered, 60, lambda: second.log_tail())
    assert flaky.delivered.count(send.send_id) == 1
