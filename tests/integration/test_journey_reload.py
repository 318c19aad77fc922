"""Journey rollout on a live worker: a changed file is picked up without a restart, an invalid
set is refused as a whole and the running version stays active."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from omnistream.dev import fetch

from .conftest import Stack, Worker, wait_until
from .test_walking_skeleton import counter, envelope, produce

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

JOURNEY = """
id: welcome
name: Welcome
trigger: {{event: signed_up}}
steps:
  - id: hello
    type: send
    channels: [email]
    category: transactional
    content:
      email: {{subject: "{subject}", body: "Hello {{{{ profile.traits.first_name }}}}"}}
"""


def journeys_on(worker: Worker) -> dict[str, str]:
    status, body = fetch(f"{worker.base_url}/ready")
    assert status == 200, body
    return dict(json.loads(body)["journeys"])


def test_reload_applies_valid_changes_and_refuses_invalid_sets(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    path = stack.journeys_dir / "welcome.yaml"
    path.write_text(JOURNEY.format(subject="v1"))
    worker = start_worker()
    v1 = journeys_on(worker)["welcome"]

    path.write_text(JOURNEY.format(subject="v2"))
    wait_until(lambda: journeys_on(worker)["welcome"] != v1, 20, "the new version to be loaded")
    v2 = journeys_on(worker)["welcome"]
    assert counter(worker.metrics(), "omnistream_journey_reloads_total", result="applied") == 1

    traits = {"first_name": "Lin", "email": "lin@example.com"}
    asyncio.run(produce(stack, [envelope("s1", "signed_up", "c-1", traits=traits)]))
    wait_until(lambda: len(stack.sends()) == 1, 30, "the welcome send")
    assert stack.sends()[0]["subject"] == "v2"  # new entries use the new version

    (stack.journeys_dir / "broken.yaml").write_text("id: broken\nname: [unclosed\n")
    wait_until(
        lambda: (
            counter(worker.metrics(), "omnistream_journey_reloads_total", result="refused") >= 1
        ),
        20,
        "the invalid set to be refused",
    )
    assert journeys_on(worker) == {"welcome": v2}  # the running set stays active
    assert "broken.yaml:" in worker.log_path.read_text()  # the refusal names file and line
    assert worker.proc.poll() is None
