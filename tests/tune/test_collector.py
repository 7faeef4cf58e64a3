"""The StdOut collector as Katib v0.19.0 reads lines, picks values and timestamps."""

from __future__ import annotations

import pytest

from xgbflow.tune import collector

METRICS = ("accuracy", "f1")


def logs_of(*lines: str, filters: tuple[str, ...] = ()) -> list[collector.MetricLog]:
    return collector.collect_logs(lines, METRICS, filters)


@pytest.mark.parametrize(
    ("token", "nanoseconds"),
    [
        ("1970-01-01T00:00:01Z", 1_000_000_000),
        ("1970-01-01T00:00:01.5Z", 1_500_000_000),
        ("1970-01-01T00:00:00.000000001Z", 1),
        ("1970-01-01T01:00:00+01:00", 0),
        ("2026-02-30T00:00:00Z", None),
        ("2026-12-04 15:50:00Z", None),
        ("2026-12-04T15:50:00", None),
        ("epoch-12", None),
    ],
)
def test_timestamps_are_rfc3339_or_nothing(token: str, nanoseconds: int | None) -> None:
    assert collector.parse_timestamp(token) == nanoseconds


def test_a_line_without_a_timestamp_gets_the_zero_time() -> None:
    (log,) = logs_of("accuracy=0.91")

    assert (log.timestamp, log.name, log.value) == (
        collector.ZERO_TIME,
        "accuracy",
        "0.91",
    )


def test_only_named_metrics_count_and_every_match_on_a_line_is_taken() -> None:
    logs = logs_of("1970-01-01T00:00:01Z loss=0.3 accuracy=0.9 f1 = 0.8 auc=0.95")

    assert [(log.name, log.value) for log in logs] == [
        ("accuracy", "0.9"),
        ("f1", "0.8"),
    ]


def test_default_filter_reads_exponents_and_signs() -> None:
    logs = logs_of("accuracy=9.1e-01", "accuracy=+.5", "f1=-2E3")

    assert [log.value for log in logs] == ["9.1e-01", "+.5", "-2E3"]


def test_a_custom_filter_replaces_the_default() -> None:
    lines = ("accuracy=0.9", "accuracy: 0.8")

    logs = logs_of(*lines, filters=(r"(\w+):\s*([\d.]+)",))

    assert [log.value for log in logs] == ["0.8"]


def test_objective_missing_from_the_output_is_unavailable() -> None:
    logs = logs_of("f1=0.8", "training went fine")

    assert [(log.name, log.value) for log in logs] == [("accuracy", "unavailable")]
    summary = collector.summarize(logs, METRICS)
    assert summary["accuracy"].value("latest") is None


def test_latest_follows_timestamps_not_line_order() -> None:
    logs = logs_of(
        "1970-01-01T00:00:03Z accuracy=0.7",
        "1970-01-01T00:00:01Z accuracy=0.9",
        "1970-01-01T00:00:02Z accuracy=0.8",
    )

    summary = collector.summarize(logs, METRICS)["accuracy"]

    assert (summary.min, summary.max, summary.latest) == ("0.7", "0.9", "0.7")
    assert collector.ordered_values(logs, "accuracy") == [0.9, 0.8, 0.7]


def test_equal_timestamps_let_the_later_line_win() -> None:
    logs = logs_of(
        "1970-01-01T00:00:01Z accuracy=0.7", "1970-01-01T00:00:01Z accuracy=0.6"
    )

    assert collector.summarize(logs, METRICS)["accuracy"].latest == "0.6"


@pytest.mark.parametrize(
    ("strategy", "value"), [("min", 0.6), ("max", 0.95), ("latest", 0.8)]
)
def test_strategies_pick_min_max_or_latest(strategy: str, value: float) -> None:
    logs = logs_of("accuracy=0.6", "accuracy=0.95", "accuracy=0.8")

    summary = collector.summarize(logs, METRICS)["accuracy"]

    assert summary.value(strategy) == value


def test_min_and_max_fall_back_to_latest_when_no_value_is_numeric() -> None:
    logs = [collector.MetricLog(0, "accuracy", "")]

    summary = collector.summarize(logs, METRICS)["accuracy"]

    assert summary.min == collector.UNAVAILABLE
    assert summary.value("max") is None
