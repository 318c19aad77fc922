"""Journey rollout on a live worker: a changed file is picked up without a restart, an invalid
set is refused as a whole and the running version stays active."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

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
    status, body = worker.fetch("/ready")
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


def test_bad_files_in_a_running_worker_are_refused_and_a_restart_runs_the_last_good_set(
    stack: Stack, start_worker: Callable[..., Worker]
) -> None:
    """Issue 15.5: 400 nested '[' (RecursionError) and a non-UTF-8 byte crashed the running
    worker, and every restart after it."""
    (stack.journeys_dir / "welcome.yaml").write_text(JOURNEY.format(subject="v1"))
    worker = start_worker()
    running = journeys_on(worker)

    (stack.journeys_dir / "deep.yaml").write_text("[" * 400)
    (stack.journeys_dir / "latin1.yaml").write_bytes(b"id: caf\xe9\n")
    wait_until(lambda: refusals(worker) >= 1, 20, lambda: f"the refusal\n{worker.log_tail()}")
    assert worker.proc.poll() is None and journeys_on(worker) == running
    log = worker.log_path.read_text()
    assert "deep.yaml:1: nested deeper than 50 levels" in log
    assert "latin1.yaml:1: not UTF-8: byte 0xe9 at column 8" in log

    traits = {"first_name": "Lin", "email": "lin@example.com"}
    asyncio.run(produce(stack, [envelope("s1", "signed_up", "c-1", traits=traits)]))
    wait_until(lambda: len(stack.sends()) == 1, 30, "the welcome send")  # still serving

    worker.stop()
    again = start_worker()  # same name, same data directory; the bad files are still there
    assert journeys_on(again) == running
    assert refusals(again) == 1
    assert "running the last good set" in again.log_path.read_text()


def refusals(worker: Worker) -> float:
    return counter(worker.metrics(), "omnistream_journey_reloads_total", result="refused")
