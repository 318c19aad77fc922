"""The console over HTTP against two real workers sharing the partitions (issue 20, item 3).

Two workers, so every fleet-wide claim is tested where it can fail: the stats come from the
global table (either worker answers the same), the waiting figures are gathered from both
workers' rows, and a customer's page, preview and test send are answered by the worker that
owns the row (forwarded when asked on the other one).
"""

from __future__ import annotations

import asyncio
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from omnistream.runtime.partitions import partition_of

from .conftest import Stack, Worker, launch_worker, new_stack, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

JOURNEY = """
id: welcome
name: Welcome
trigger: {event: signed_up}
entry: {control_percent: 30}
goal: {event: order_placed}
steps:
  - id: greet
    type: send
    channels: [email]
    category: transactional
    content:
      email:
        subject: "Welcome, {{ profile.traits.first_name | default: 'friend' }}"
        body: "Hello {{ profile.traits.first_name | default: 'friend' }}!"
    next: hold
  - id: hold
    type: wait_for
    event: order_placed
    timeout: 7d
"""
POLICIES = "channel_costs: {email: 0.002}\ncost_currency: USD\n"
CUSTOMERS = [f"k-{i}" for i in range(12)]
BUYERS = CUSTOMERS[:4]
EVIL = "<script>alert(1)</script>"
"""The first name of one customer: the pages must show it as text."""


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def request(
    worker: Worker,
    path: str,
    *,
    cookie: str | None = None,
    bearer: bool = False,
    form: dict[str, str] | None = None,
    origin: str | None = None,
) -> tuple[int, str, dict[str, str]]:
    """(status, body, headers) of one request to ``worker``'s internal listener."""
    headers = {}
    if cookie is not None:
        headers["Cookie"] = f"omnistream_console={cookie}"
    if bearer:
        headers["Authorization"] = f"Bearer {worker.token}"
    if origin is not None:
        headers["Origin"] = origin
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(f"{worker.base_url}{path}", data=data, headers=headers)
    try:
        with OPENER.open(req, timeout=30) as response:
            return int(response.status), response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def envelope(type_: str, customer: str, **props: Any) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"{type_}-{customer}",
            "type": type_,
            "source": "site",
            "customer_id": customer,
            "timestamp": datetime.now(UTC).isoformat(),
            "properties": props,
        }
    )


def produce(stack: Stack, records: list[tuple[str, bytes]]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=stack.broker_url.removeprefix("kafka://"))
        await producer.start()
        try:
            for key, value in records:
                await producer.send_and_wait(stack.topic("events.site"), value, key=key.encode())
        finally:
            await producer.stop()

    asyncio.run(run())


async def read_all(stack: Stack, topic: str) -> list[Any]:
    """Every record of ``topic`` now (until a fetch brings nothing for 1.5 s)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=stack.broker_url.removeprefix("kafka://"),
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        idle = 0
        while idle < 3:
            got = [m for ms in (await consumer.getmany(timeout_ms=500)).values() for m in ms]
            records.extend(got)
            idle = 0 if got else idle + 1
    finally:
        await consumer.stop()
    return records


def stream_counts(stack: Stack) -> Counter[tuple[str, str]]:
    """(kind, step) -> records of the welcome journey, counted from omni.journey-events by
    hand: the independent figures the console must show."""
    messages = asyncio.run(read_all(stack, stack.topic("journey-events")))
    records = [orjson.loads(m.value) for m in messages]
    return Counter(
        (r["kind"], r["step_id"] or "-") for r in records if r["journey_id"] == "welcome"
    )


@dataclass
class Fleet:
    stack: Stack
    workers: list[Worker]
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def kind(self, kind: str) -> int:
        return sum(n for (k, _), n in self.counts.items() if k == kind)


def signup(customer: str) -> tuple[str, bytes]:
    name = EVIL if customer == CUSTOMERS[-1] else f"Name-{customer}"
    traits = {"email": f"{customer}@example.com", "first_name": name}
    return customer, envelope("signed_up", customer, traits=traits)


def console_row(worker: Worker) -> str:
    status, body, _ = request(worker, "/console?window=day", bearer=True)
    row = re.search(r'<tr data-testid="journey-row" data-journey-id="welcome">.*?</tr>', body)
    return row.group(0) if status == 200 and row else ""


def settle(fleet: Fleet) -> None:
    """Everybody signed up, the buyers ordered, one bad record dead-lettered; the stream holds
    every entry, goal and send outcome, and the console counted them all."""
    stack = fleet.stack
    produce(stack, [signup(c) for c in CUSTOMERS])
    produce(stack, [(c, envelope("order_placed", c, order_id=f"o-{c}")) for c in BUYERS])
    produce(stack, [("bad", b"{not json")])

    def streamed() -> bool:
        fleet.counts = stream_counts(stack)
        sends, outcomes = fleet.kind("send"), fleet.kind("outcome")
        return (fleet.kind("entered"), fleet.kind("goal")) == (len(CUSTOMERS), len(BUYERS)) and (
            0 < sends == outcomes
        )

    def logs() -> str:
        return "\n".join(w.log_tail(30) for w in fleet.workers)

    wait_until(streamed, 90, lambda: f"the stream, counted {fleet.counts}\n{logs()}")
    entered = f'<td data-field="entered">{len(CUSTOMERS)}</td>'
    wait_until(lambda: entered in console_row(fleet.workers[0]), 30, "the console's count")


@pytest.fixture(scope="module")
def fleet(
    broker_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    stack = new_stack(broker_url, redis_url, tmp_path_factory.mktemp("console"))
    (stack.journeys_dir / "welcome.yaml").write_text(JOURNEY)
    (stack.journeys_dir / "policies.yaml").write_text(POLICIES)
    started: list[Worker] = []
    try:
        launch_worker(stack, started, "w0")
        launch_worker(stack, started, "w1")
        fleet = Fleet(stack, started)
        wait_until(lambda: _both_own_partitions(fleet), 60, "both workers owning partitions")
        settle(fleet)
        yield fleet
    finally:
        for worker in started:
            worker.stop()


def _both_own_partitions(fleet: Fleet) -> bool:
    counts = []
    for worker in fleet.workers:
        status, body = worker.fetch("/ready")
        counts.append(orjson.loads(body).get("assigned_partitions", 0) if status == 200 else 0)
    return all(counts)


def step_node(html: str, step: str) -> dict[str, str]:
    match = re.search(rf'<g [^>]*data-testid="step-node" data-step-id="{step}"[^>]*>', html)
    assert match, html
    return dict(re.findall(r'(data-[\w-]+)="([^"]*)"', match.group(0)))


def test_unauthenticated_and_wrong_cookie_are_refused(fleet: Fleet) -> None:
    w0 = fleet.workers[0]
    for cookie in (None, "wrong"):
        for path in ("/console", "/console/journeys/welcome", f"/console/customers/{CUSTOMERS[0]}"):
            status, body, _ = request(w0, path, cookie=cookie)
            assert status == 401 and 'data-testid="login-required"' in body, (path, cookie)
            assert "Name-" not in body and 'data-testid="journey-row"' not in body
    status, body, _ = request(w0, f"/customers/{CUSTOMERS[0]}", cookie=w0.token)
    assert status == 401, "the console cookie must not open the JSON routes"


def test_login_then_the_journeys_list_on_either_worker(fleet: Fleet) -> None:
    w0 = fleet.workers[0]
    status, _, headers = request(w0, "/console/login", form={"token": w0.token or ""})
    assert status == 303 and headers["Location"] == "/console"
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    for worker in fleet.workers:  # either worker answers for the fleet
        status, body, _ = request(worker, "/console?window=day", cookie=worker.token)
        assert status == 200, body
        row = re.search(r'<tr data-testid="journey-row" data-journey-id="welcome">.*?</tr>', body)
        assert row, body
        assert f'<td data-field="entered">{len(CUSTOMERS)}</td>' in row.group(0)
        assert f'<td data-field="goals">{len(BUYERS)}</td>' in row.group(0)
        assert f'<td data-field="active">{len(CUSTOMERS) - len(BUYERS)}</td>' in row.group(0)
        assert "Figures from 2 of 2 worker(s)" in body and "missing" not in body


def test_the_graph_counts_match_the_stream_and_cover_both_workers(fleet: Fleet) -> None:
    shares = []
    for worker in fleet.workers:
        status, body = worker.fetch("/console/api/live?window=day")
        assert status == 200, body
        shares.append(orjson.loads(body))
    active = [s["journeys"].get("welcome", {}).get("active", 0) for s in shares]
    assert sum(active) == len(CUSTOMERS) - len(BUYERS) and all(active), active
    partitions = [set(s["stats_partitions"]) for s in shares]
    assert all(partitions) and partitions[0].isdisjoint(partitions[1]), partitions
    for worker in fleet.workers:
        status, body, _ = request(worker, "/console/journeys/welcome?window=day", bearer=True)
        assert status == 200, body
        for step in ("greet", "hold"):
            node = step_node(body, step)
            assert int(node["data-entered"]) == fleet.counts[("step", step)], (step, node)
        assert int(step_node(body, "hold")["data-goals"]) == len(BUYERS)
        assert step_node(body, "hold")["data-waiting"] == str(len(CUSTOMERS) - len(BUYERS))
        for testid in ("window-picker", "uplift-panel", "cost-panel"):
            assert f'data-testid="{testid}"' in body
    status, body, _ = request(fleet.workers[1], "/console/journeys/welcome/graph.json", bearer=True)
    model = orjson.loads(body)
    assert status == 200 and {n["id"] for n in model["nodes"]} == {"greet", "hold"}
    status, _, _ = request(fleet.workers[0], "/console/journeys/welcome?window=year", bearer=True)
    assert status == 400


def test_the_json_stats_routes_answer_for_the_whole_fleet_on_either_worker(fleet: Fleet) -> None:
    """Each worker's global-table copy holds only its own partitions' stats (faust #283): the
    routes must ask the other worker, and say that every partition was answered for."""
    for worker in fleet.workers:
        status, body = worker.fetch("/journeys/welcome/stats?window=day")
        assert status == 200, body
        figures = orjson.loads(body)
        assert figures["partitions_missing"] == [] and figures["workers_failed"] == []
        assert figures["partitions_answered"] == list(range(4))
        assert figures["by_kind"]["entered"] == fleet.kind("entered") == len(CUSTOMERS)
        assert figures["by_kind"]["goal"] == fleet.kind("goal") == len(BUYERS)
        for step in ("greet", "hold"):
            assert figures["steps"][step]["step"] == fleet.counts[("step", step)], step
        status, body = worker.fetch("/journeys/stats?window=day")
        assert status == 200, body
        overview = orjson.loads(body)
        (row,) = [r for r in overview["journeys"] if r["journey_id"] == "welcome"]
        assert (row["entered"], row["goals"]) == (len(CUSTOMERS), len(BUYERS))
        assert overview["partitions_missing"] == []
    assert fleet.workers[0].fetch("/journeys/welcome/stats?window=year")[0] == 400
    assert fleet.workers[0].fetch("/fleet/journey-stats?window=day", token=False)[0] == 401
    assert fleet.workers[0].fetch("/fleet/journey-stats?window=year")[0] == 400


def test_every_customer_page_answers_on_one_worker_with_an_inert_timeline(fleet: Fleet) -> None:
    w0 = fleet.workers[0]
    for customer in CUSTOMERS:
        status, body, _ = request(w0, f"/console/customers/{customer}", cookie=w0.token)
        assert status == 200, (customer, body)
        assert 'data-testid="customer-timeline"' in body and "signed_up (from site)" in body
        if customer == CUSTOMERS[-1]:
            assert EVIL not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    status, body, _ = request(w0, f"/console/customers/{CUSTOMERS[-1]}", cookie=w0.token)
    assert "greet" in body and "hold" in body  # the step records and the live instance


def owned_by(worker: Worker, customers: list[str]) -> list[str]:
    """The customers whose row ``worker`` holds (Faust assigns the equally partitioned topics
    together, so its journey-events partitions are its customers partitions)."""
    status, body = worker.fetch("/console/api/live?window=day")
    assert status == 200, body
    partitions = set(orjson.loads(body)["stats_partitions"])
    return [c for c in customers if partition_of(c.encode(), 4) in partitions]


def console_test_sends(workers: list[Worker]) -> float:
    pattern = r'omnistream_console_test_sends_total\{channel="email",result="sent"\} ([\d.]+)'
    return sum(float(m[1]) for w in workers if (m := re.search(pattern, w.metrics())))


def instances_table(html: str) -> list[str]:
    return re.findall(r'data-testid="customer-instances".*?</table>', html, re.S)


def test_preview_and_test_send_forwarded_to_the_owner_and_its_provider(fleet: Fleet) -> None:
    w0, w1 = fleet.workers
    remote = [c for c in owned_by(w1, CUSTOMERS[len(BUYERS) : -1])]
    assert remote, "w1 holds none of the waiting customers"
    customer = remote[0]  # asked on w0: the preview and the POST are forwarded to w1
    path = f"/console/journeys/welcome/steps/greet/preview?customer={customer}"
    status, body, _ = request(w0, path, cookie=w0.token)
    assert status == 200 and f"Hello Name-{customer}!" in body, body
    csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', body)
    assert csrf, body
    status, body, _ = request(w0, "/console/journeys/welcome/steps/greet/preview", bearer=True)
    assert status == 200 and "Hello friend!" in body  # no customer: an empty profile
    action = "/console/journeys/welcome/steps/greet/test-send"
    form = {"channel": "email", "customer": customer, "address": "ops@example.org"}
    status, body, _ = request(w0, action, cookie=w0.token, form=form)  # no CSRF token
    assert status == 403
    status, _, _ = request(  # another site's page posting with the operator's cookie
        w0, action, cookie=w0.token, form={**form, "csrf": csrf[1]}, origin="http://evil.test"
    )
    assert status == 403
    before, sent_before = (
        request(w0, f"/console/customers/{customer}", bearer=True)[1],
        (console_test_sends(fleet.workers)),
    )
    status, body, _ = request(
        w0, action, cookie=w0.token, form={**form, "csrf": csrf[1]}, origin=w0.base_url
    )
    assert status == 200 and 'data-testid="test-send-result"' in body and "Test sent" in body
    wait_until(
        lambda: any(s.get("to") == "ops@example.org" for s in fleet.stack.sends()),
        20,
        lambda: f"the test send in {fleet.stack.sends()}",
    )
    (sent,) = [s for s in fleet.stack.sends() if s.get("to") == "ops@example.org"]
    assert str(sent.get("send_id", "")).startswith("console-test-"), sent
    assert str(sent.get("subject", "")).startswith("[TEST] Welcome"), sent
    assert console_test_sends(fleet.workers) == sent_before + 1
    after = request(w0, f"/console/customers/{customer}", bearer=True)[1]
    assert instances_table(before) == instances_table(after) != []  # no journey state touched


def test_dlq_page_lists_the_rejected_record(fleet: Fleet) -> None:
    w1 = fleet.workers[1]
    wait_until(
        lambda: 'data-testid="dlq-row"' in request(w1, "/console/dlq", cookie=w1.token)[1],
        30,
        "a dead letter on the DLQ page",
    )
    status, body, _ = request(w1, "/console/dlq", cookie=w1.token)
    assert status == 200
    row = re.search(r'<tr data-testid="dlq-row" data-reason="([^"]+)">', body)
    assert row and fleet.stack.topic("events.site") in body, body


def test_static_assets_ship_in_the_package(fleet: Fleet) -> None:
    w0 = fleet.workers[0]
    for name in ("elk.bundled.js", "console.js", "console.css", "elk.LICENSE.md"):
        status, body, _ = request(w0, f"/console/static/{name}", cookie=w0.token)
        assert status == 200 and body, name
    assert request(w0, "/console/static/../../config.py", cookie=w0.token)[0] == 404
