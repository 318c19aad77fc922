"""The journey console in headless Chromium against a live worker with scripted traffic (issue 20).

The pages are read through the ``data-testid`` contract of omnistream/console (docs/console.md);
the figures are checked against the stats route the console is built on, and the customer data
against what the traffic (tests/browser/conftest.py) produced.

``OMNISTREAM_CONSOLE_SCREENSHOT=docs/console-journey.png`` makes the graph test save the journey
page there (the picture in docs/console.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from .conftest import BUYERS, CUSTOMERS, Live

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(240)]

SCREENSHOT_ENV = "OMNISTREAM_CONSOLE_SCREENSHOT"


def step_nodes(page: Page, live: Live, window: str = "day") -> Locator:
    page.goto(live.url(f"/console/journeys/{live.journey_id}?window={window}"))
    graph = page.get_by_test_id("journey-graph")
    expect(graph).to_be_visible()
    nodes = graph.get_by_test_id("step-node")
    expect(nodes).to_have_count(2)  # greet, hold: the layout has drawn every step
    return nodes


def attribute(node: Locator, name: str) -> str:
    value = node.get_attribute(name)
    assert value is not None, f"step node without {name}: {node.evaluate('n => n.outerHTML')}"
    return value


def entered_by_step(nodes: Locator) -> dict[str, int]:
    return {
        attribute(n, "data-step-id"): int(float(attribute(n, "data-entered"))) for n in nodes.all()
    }


def test_journeys_list_and_graph_render_non_zero_counts(console: Page, live: Live) -> None:
    row = console.locator(f'[data-testid="journey-row"][data-journey-id="{live.journey_id}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text(str(len(CUSTOMERS)))  # entered, in the headline figures

    entered = entered_by_step(step_nodes(console, live))
    assert set(entered) == {live.send_step, "hold"}
    assert all(n > 0 for n in entered.values()), entered
    for panel in ("window-picker", "uplift-panel", "cost-panel"):
        expect(console.get_by_test_id(panel)).to_be_visible()

    target = os.environ.get(SCREENSHOT_ENV)
    if target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        console.screenshot(path=target, full_page=True)


def test_a_step_nodes_entered_equals_the_stats_api(console: Page, live: Live) -> None:
    nodes = step_nodes(console, live)
    entered = entered_by_step(nodes)
    steps = live.stats("day")["steps"]  # GET /journeys/{id}/stats with the bearer token
    assert entered == {step: int(steps[step].get("step", 0)) for step in entered}
    assert entered[live.send_step] == len(CUSTOMERS)  # everybody walks it, control too
    waiting = {attribute(n, "data-step-id"): attribute(n, "data-waiting") for n in nodes.all()}
    assert int(waiting["hold"]) == len(CUSTOMERS) - len(BUYERS), waiting  # live instances now


def test_customer_page_shows_the_known_customers_timeline(console: Page, live: Live) -> None:
    console.goto(live.url(f"/console/customers/{live.customer}"))
    expect(console.locator("body")).to_contain_text(live.first_name)  # the profile
    timeline = console.get_by_test_id("customer-timeline")
    expect(timeline).to_be_visible()
    rows = timeline.get_by_test_id("timeline-row")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 2, timeline.inner_text()  # at least the sign-up and the send
    expect(timeline).to_contain_text("signed_up")
    expect(timeline).to_contain_text(live.send_step)
    assert live.customer not in BUYERS  # so the instance is still live, waiting in hold
    expect(console.locator("body")).to_contain_text("hold")


def test_preview_renders_liquid_with_the_customers_data(console: Page, live: Live) -> None:
    console.goto(
        live.url(
            f"/console/journeys/{live.journey_id}/steps/{live.send_step}/preview"
            f"?customer={live.customer}"
        )
    )
    body = console.get_by_test_id("preview-body")
    expect(body.first).to_be_visible()
    expect(body.first).to_contain_text(f"Hello {live.first_name}, your account is ready.")
    assert "{{" not in body.first.inner_text()


@pytest.mark.parametrize("path", ["/console", "/console/journeys/{j}", "/console/customers/{c}"])
def test_an_unauthenticated_browser_is_refused(
    browser_context: BrowserContext, live: Live, path: str
) -> None:
    page = browser_context.new_page()
    response = page.goto(live.url(path.format(j=live.journey_id, c=live.customer)))
    assert response is not None
    refused = response.status == 401 or page.url.endswith("/console/login")
    assert refused, (response.status, page.url)
    expect(page.get_by_test_id("login-required")).to_be_visible()
    for shown in ("journey-row", "journey-graph", "customer-timeline"):
        assert page.get_by_test_id(shown).count() == 0, shown
    assert live.first_name not in page.content()


def test_a_wrong_token_in_the_login_form_is_refused(
    browser_context: BrowserContext, live: Live
) -> None:
    page = browser_context.new_page()
    page.goto(live.url("/console/login"))
    field = page.locator("input[name=token]")
    field.fill("not-" + (live.worker.token or ""))
    with page.expect_navigation():
        field.press("Enter")
    page.goto(live.url("/console"))
    expect(page.get_by_test_id("login-required")).to_be_visible()
    assert page.get_by_test_id("journey-row").count() == 0
