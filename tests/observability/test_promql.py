"""metric_names: what the dashboard and alert checks rely on to find every queried metric."""

from __future__ import annotations

import pytest

from omnistream.observability.promql import metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        ('sum by (source) (rate(a_total{job=~"$job"}[$__rate_interval]))', {"a_total"}),
        ("histogram_quantile(0.95, sum by (le, stage) (rate(b_seconds_bucket[5m])))",
         {"b_seconds_bucket"}),
        ("sum(rate(x_total[5m])) by (job) / clamp_min(sum(rate(y_count[5m])) by (job), 1e-9)",
         {"x_total", "y_count"}),
        ("a > 1000 and on (topic) delta(b[10m]) > 0", {"a", "b"}),
        ("(sum by (job) (increase(c_total[10m])) or sum by (job) (up) * 0) == 0",
         {"c_total", "up"}),
        ('label_replace(rate(f_total[1m]), "channel", "$1", "from_channel", "(.*)")',
         {"f_total"}),
        ("time() - start_time_seconds offset 5m", {"start_time_seconds"}),
        ('sum without (instance) (g{le="+Inf", a="b,c"})', {"g"}),
    ],
)  # fmt: skip
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_an_unknown_word_is_reported_not_dropped() -> None:
    # a typo'd function name without parentheses must surface as a "metric" the check rejects
    assert metric_names("sum(ratee x_total)") == {"ratee", "x_total"}
