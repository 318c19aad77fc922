"""The soak's verdict (benchmarks/soak_check.py): each kind of fault is counted, and a clean run
counts none; the kill plan always finds its victims up."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

from benchmarks.soak_check import (
    CART_WAIT,
    Kill,
    Produced,
    SendLine,
    longest_delay,
    make_plan,
    plan_kills,
    resume_seconds,
    resume_worst,
    verdict,
)

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


PRODUCED = [
    Produced("buyer", "cart_updated", at(0)),
    Produced("buyer", "order_placed", at(0)),
    Produced("buyer", "order_placed", at(5)),
    Produced("leaver", "cart_updated", at(1)),
]


def clean_sends() -> list[SendLine]:
    return [
        SendLine("s1", "buyer", "confirm", at(0.5)),
        SendLine("s2", "buyer", "confirm", at(5.5)),
        SendLine("s3", "leaver", "cart_push", at(1) + CART_WAIT + timedelta(seconds=0.5)),
    ]


def test_a_clean_run_counts_nothing() -> None:
    result = verdict(PRODUCED, clean_sends(), {"buyer"}, [Kill(at(0.2), (0, 1))])
    assert not result.failed
    assert (result.expected, result.seen) == (3, 3)
    assert result.resume_s == [0.5]


def test_each_fault_is_counted() -> None:
    sends = [
        clean_sends()[0],
        SendLine("s1", "buyer", "confirm", at(0.7)),  # same send twice
        SendLine("s9", "buyer", "cart_push", at(21)),  # the buyer got the cart push
        SendLine("s3", "leaver", "cart_push", at(15)),  # before its 20 s
    ]
    result = verdict(PRODUCED, sends, {"buyer"}, [])
    assert len(result.lost) == 1 and "buyer confirm" in result.lost[0]  # the second order's
    assert result.duplicated == ["buyer send s1 written 2 times"]
    assert len(result.after_purchase) == 1 and "s9" in result.after_purchase[0]
    assert len(result.early) == 1 and "s3" in result.early[0]
    assert result.failed


def test_more_distinct_sends_than_orders_are_duplicates() -> None:
    sends = [*clean_sends(), SendLine("s4", "buyer", "confirm", at(6))]
    assert len(verdict(PRODUCED, sends, {"buyer"}, []).duplicated) == 1


def test_resume_counts_from_the_kill_or_the_due_time_until_the_next_kill() -> None:
    pairs = [
        (at(0), at(1)),  # before the first kill: not counted
        (at(9), at(25)),  # due before the kill, sent 15 s after it
        (at(12), at(14)),  # due after the kill, 2 s late
        (at(40), at(41)),  # due after the second kill, 1 s late
    ]
    assert resume_seconds(pairs, [at(10), at(30)]) == [15.0, 1.0]


def test_each_kill_names_the_send_that_set_its_figure() -> None:
    pairs = [(at(9), at(25)), (at(12), at(14)), (at(40), at(41))]
    names = ["c1 confirm", "c2 cart_push", "c3 confirm"]
    worst = resume_worst(pairs, names, [at(10), at(30), at(45)])
    assert worst[0].startswith("c1 confirm due ") and worst[0].endswith("(15.0s)")
    assert worst[1].startswith("c3 confirm due ") and worst[1].endswith("(1.0s)")
    assert worst[2] == "none waited"


def test_a_send_still_waiting_at_the_next_kill_is_charged_to_each_kill_once() -> None:
    pairs = [(at(25), at(50))]  # due 5 s before the second kill, sent 20 s after it
    assert resume_seconds(pairs, [at(10), at(30)]) == [5.0, 20.0]
    assert longest_delay(pairs, at(10)) == 25.0


def test_kills_never_overlap_a_restart_and_one_takes_both_down() -> None:
    for seed in range(50):
        kills = plan_kills(random.Random(seed), 5, 8.0, 115.0)
        assert any(len(k.victims) == 2 for k in kills)
        for before, after in itertools.pairwise(kills):
            assert after.at >= before.at + before.restart_after + 5.0


def test_the_plan_is_seeded_and_a_buyer_orders_right_after_the_cart() -> None:
    plan, buyers = make_plan(random.Random(7), 40, 400, 60.0)
    assert (plan, buyers) == make_plan(random.Random(7), 40, 400, 60.0)
    assert len(plan) == 400
    for customer in buyers:
        mine = [p for p in plan if p.customer == customer]
        kinds = [p.type for p in mine]
        cart = kinds.index("cart_updated")
        assert kinds[:3] == ["signed_up", "push_token_registered", "consent_updated"]
        assert kinds[cart + 1] == "order_placed" and mine[cart + 1].at == mine[cart].at
