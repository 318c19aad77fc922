"""Headless Chromium (Debian's package, driven by Playwright) against one live worker with traffic.

One worker per test module: starting a worker and settling its traffic is most of the cost, and
the browser tests only read. The module's ``live`` fixture starts it on the real broker and Redis
(tests/integration/conftest.py helpers), produces a scripted run in which a known customer enters
a known journey and gets an email, waits until the stats route has counted all of it, and stops
the worker at the end. ``console`` is a page logged in through the console's login form;
``browser_context`` is a fresh, unauthenticated one. When a test fails, a screenshot of every
page it opened is written under its tmp_path and named in the report.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.integration.conftest import Stack, Worker, launch_worker, new_stack, wait_until

CHROMIUM_ENV = "OMNISTREAM_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
PAGE_TIMEOUT_MS = 15_000

JOURNEY_ID = "welcome"
SEND_STEP = "greet"
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
        body: "Hello {{ profile.traits.first_name | default: 'friend' }}, your account is ready."
    next: hold
  - id: hold
    type: wait_for
    event: order_placed
    timeout: 7d
"""
POLICIES = """
channel_costs: {email: 0.002}
cost_currency: USD
"""
KNOWN = "c-ada"
"""The known customer: in the treatment group (control is stable per customer), gets the email."""
KNOWN_FIRST_NAME = "Ottoline"
CUSTOMERS = [KNOWN, *(f"c-{i}" for i in range(9))]
BUYERS = ["c-0", "c-3", "c-6"]
"""They order (goals); the known customer does not, so their instance stays live, waiting."""


@dataclass
class Live:
    """The module's running worker and what its scripted traffic was."""

    stack: Stack
    worker: Worker
    journey_id: str = JOURNEY_ID
    send_step: str = SEND_STEP
    customer: str = KNOWN
    first_name: str = KNOWN_FIRST_NAME

    def url(self, path: str) -> str:
        return f"{self.worker.base_url}{path}"

    def stats(self, window: str = "day") -> dict[str, Any]:
        """The stats route's figures for the journey, with the bearer token."""
        status, body = self.worker.fetch(f"/journeys/{self.journey_id}/stats?window={window}")
        assert status == 200, body
        figures: dict[str, Any] = orjson.loads(body)
        return figures


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


async def _produce(stack: Stack, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=stack.broker_url.removeprefix("kafka://"))
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(stack.topic("events.site"), value, key=key.encode())
    finally:
        await producer.stop()


def produce(stack: Stack, records: list[tuple[str, bytes]]) -> None:
    """Produce from a thread of its own: Playwright's sync API keeps an event loop marked running
    in this one once the session's browser is up, and asyncio.run refuses to nest."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(_produce(stack, records))).result(timeout=60)


def signup(customer: str) -> tuple[str, bytes]:
    first = KNOWN_FIRST_NAME if customer == KNOWN else f"Name{customer[-1]}"
    traits = {"email": f"{customer}@example.com", "first_name": first}
    return customer, envelope("signed_up", customer, traits=traits)


def run_traffic(live: Live) -> None:
    """Sign everybody up, wait for the treatment group's emails, then let the buyers order and
    wait until the stats route has counted every entry, send and goal (the figures the browser
    tests compare are then settled)."""
    stack, worker = live.stack, live.worker
    produce(stack, [signup(c) for c in CUSTOMERS])
    wait_until(
        lambda: any(KNOWN_FIRST_NAME in str(s) for s in stack.sends()),
        60,
        lambda: f"the known customer's email in {stack.sends_path}\n{worker.log_tail()}",
    )
    produce(stack, [(c, envelope("order_placed", c, order_id=f"o-{c}")) for c in BUYERS])
    seen: dict[str, Any] = {}

    def settled() -> bool:
        status, body = worker.fetch(f"/journeys/{JOURNEY_ID}/stats?window=day")
        if status != 200:
            return False
        seen.update(orjson.loads(body))
        kinds = seen["by_kind"]
        sends = kinds.get("send", 0)
        sent = sum(by.get("sent", 0) for by in seen["outcomes"].values())
        return (
            kinds.get("entered") == len(CUSTOMERS)
            and kinds.get("goal") == len(BUYERS)
            and sends > 0
            and sent == sends
        )

    wait_until(settled, 60, lambda: f"settled stats, last {seen}\n{worker.log_tail()}")


@pytest.fixture(scope="module")
def live(
    broker_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """One worker with the welcome journey and its settled scripted traffic; stopped at the end."""
    stack = new_stack(broker_url, redis_url, tmp_path_factory.mktemp("live"))
    (stack.journeys_dir / f"{JOURNEY_ID}.yaml").write_text(JOURNEY)
    (stack.journeys_dir / "policies.yaml").write_text(POLICIES)
    started: list[Worker] = []
    try:
        worker = launch_worker(stack, started)
        live = Live(stack, worker)
        run_traffic(live)
        yield live
    finally:
        for worker in started:
            worker.stop()


def chromium_executable() -> str:
    """Debian's chromium (``make browser-deps``), or ``$OMNISTREAM_CHROMIUM``; a precise failure
    (never a skip) when it is not there."""
    path = os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"headless Chromium not found at {path}: the browser tests need Debian's chromium. "
            "Install it with `make browser-deps` (as root) or `sudo apt-get install chromium`, "
            f"or point {CHROMIUM_ENV} at a Chromium binary.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one module. Not per session: while Playwright's sync API is up, its event
    loop counts as running in the main thread, so every later test's asyncio.run (and the
    pytest-asyncio tests) of the same ``make test`` would fail."""
    executable = chromium_executable()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, timeout=60_000
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser_context(browser: Browser, tmp_path: Path) -> Iterator[BrowserContext]:
    """A fresh context: no cookie, so not logged in. (``tmp_path`` is where a failed test's
    screenshots go.)"""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def console(browser_context: BrowserContext, live: Live) -> Page:
    """A page logged in through the console's login form with the worker's token."""
    page = browser_context.new_page()
    page.goto(live.url("/console/login"))
    field = page.locator("input[name=token]")
    field.fill(live.worker.token or "")
    with page.expect_navigation():
        field.press("Enter")
    assert re.search(r"/console/?$", page.url), f"login ended on {page.url}"
    return page


_SHOT_PHASES = ("setup", "call")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failed setup or call, screenshot every open page under the test's tmp_path."""
    report = yield
    if report.failed and report.when in _SHOT_PHASES:
        shots = screenshot_pages(item)
        if shots:
            report.sections.append(("screenshots", "\n".join(str(p) for p in shots)))
    return report


def screenshot_pages(item: pytest.Item) -> list[Path]:
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    context = funcargs.get("browser_context")
    if not isinstance(context, BrowserContext):
        return []
    tmp = funcargs.get("tmp_path")
    directory = tmp if isinstance(tmp, Path) else Path(str(item.config.rootpath)) / "var"
    directory.mkdir(parents=True, exist_ok=True)
    shots: list[Path] = []
    for n, page in enumerate(context.pages):
        path = directory / f"failure-{n}.png"
        try:
            page.screenshot(path=path, full_page=True, timeout=10_000)
        except Exception as exc:  # a crashed page must not hide the test's own failure
            path = directory / f"failure-{n}.txt"
            path.write_text(f"no screenshot of {page.url}: {exc}")
        shots.append(path)
    return shots
