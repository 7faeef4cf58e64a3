"""`xgbflow trial`: its output is what Katib's collector reads, and the values are real.

One trial runs as a subprocess on the shared small dataset, stdout and stderr merged
as the StdOut collector sees them. Its lines are parsed with Katib's default filter
(and the older default, and the Experiment's own filters if it sets any), and every
value is compared with the same training done here, in process.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import subprocess
import sys
from pathlib import Path

import pytest

from xgbflow import dataset, evaluate, preprocess, train
from xgbflow.tune import collector, trial
from xgbflow.tune.trial import MetricWriter

ARGS = {
    "--max-depth": "3.0",
    "--learning-rate": "0.3",
    "--n-estimators": "40",
    "--min-child-weight": "2",
    "--subsample": "0.9",
}
#: Katib's default filter before v0.16, which read no exponents.
OLD_DEFAULT_FILTER = r"([\w|-]+)\s*=\s*((-?\d+)(\.\d+)?)"


@pytest.fixture(scope="module")
def trial_output(small_dataset: Path) -> list[str]:
    """The merged stdout and stderr lines of one real trial run."""
    command = [
        str(Path(sys.executable).parent / "xgbflow"),
        "trial",
        *(f"{flag}={value}" for flag, value in ARGS.items()),
        f"--data-uri={small_dataset}",
    ]
    result = subprocess.run(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    return result.stdout.splitlines()


@pytest.fixture(scope="module")
def expected(small_dataset: Path) -> dict[str, list[float]]:
    """Per-round validation accuracy and final metrics, computed here."""
    table, schema, _ = dataset.read_dataset(str(small_dataset))
    params = trial.trial_params(
        trial.build_parser().parse_args(
            [f"{flag}={value}" for flag, value in ARGS.items()]
        )
    )
    splits = preprocess.split_dataset(table, schema, seed=params.seed)
    preprocessor = preprocess.fit_preprocessor(
        preprocess.build_preprocessor(schema),
        dataset.to_model_frame(splits.train, schema),
    )
    trained = train.train_model(
        preprocessor, splits.train, splits.validation, schema, params
    )
    scores = evaluate.classification_metrics(
        dataset.labels(splits.validation, schema),
        train.predict_proba(trained.pipeline, splits.validation, schema),
    )
    rounds = [1 - error for error in trained.history["validation"]["error"]]
    return {
        "accuracy": [*rounds, scores["accuracy"]],
        "precision": [scores["precision"]],
        "recall": [scores["recall"]],
        "f1": [scores["f1"]],
        "auc": [scores["roc_auc"]],
    }


def filters_to_check(rendered_experiments: dict[str, dict]) -> list[tuple[str, ...]]:
    filters = [(), (collector.DEFAULT_FILTER,), (OLD_DEFAULT_FILTER,)]
    for document in rendered_experiments.values():
        source = document["spec"]["metricsCollectorSpec"].get("source") or {}
        own = tuple((source.get("filter") or {}).get("metricsFormat") or ())
        if own:
            filters.append(own)
    return filters


def test_collector_reads_exactly_the_computed_values(
    trial_output: list[str],
    expected: dict[str, list[float]],
    rendered_experiments: dict[str, dict],
) -> None:
    for filters in filters_to_check(rendered_experiments):
        logs = collector.collect_logs(trial_output, trial.METRIC_NAMES, filters)

        parsed = {
            name: collector.ordered_values(logs, name) for name in trial.METRIC_NAMES
        }

        rounded = {
            name: [round(value, trial.DECIMALS) for value in values]
            for name, values in expected.items()
        }
        assert parsed == rounded, f"filters {filters}"


def test_latest_accuracy_is_the_final_one_not_the_best_round(
    trial_output: list[str], expected: dict[str, list[float]]
) -> None:
    logs = collector.collect_logs(trial_output, trial.METRIC_NAMES)

    summary = collector.summarize(logs, trial.METRIC_NAMES)

    final = round(expected["accuracy"][-1], trial.DECIMALS)
    assert summary["accuracy"].value("latest") == final
    assert summary["accuracy"].value("max") == round(
        max(expected["accuracy"]), trial.DECIMALS
    )
    assert len(expected["accuracy"]) == 41  # 40 rounds, then the final value


def test_every_metric_line_is_timestamped_and_fixed_point(
    trial_output: list[str],
) -> None:
    metric_lines = [line for line in trial_output if "=" in line]
    stamps = [collector.parse_timestamp(line.split(" ", 1)[0]) for line in metric_lines]

    assert all(stamp is not None for stamp in stamps)
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == len(stamps)
    for line in metric_lines:
        stamp, text = line.split(" ")
        assert stamp.endswith("Z")
        name, value = text.split("=")
        assert name in trial.METRIC_NAMES
        assert "e" not in value.lower()
        assert value.count(".") == 1
        assert len(value.split(".")[1]) == trial.DECIMALS


def test_log_lines_carry_no_metric_the_collector_would_read(
    trial_output: list[str],
) -> None:
    log_lines = [line for line in trial_output if line.startswith("INFO ")]

    found = collector.collect_logs(log_lines, trial.METRIC_NAMES)

    assert log_lines
    assert [log.value for log in found] == [collector.UNAVAILABLE]


@pytest.mark.parametrize(
    ("given", "coerced"), [("6", 6), ("6.0", 6), ("6.000", 6), ("+6", 6)]
)
def test_integral_values_are_coerced(given: str, coerced: int) -> None:
    args = trial.build_parser().parse_args(
        [f"{flag}={value}" for flag, value in ARGS.items()] + [f"--max-depth={given}"]
    )

    params = trial.trial_params(args)

    assert params.max_depth == coerced
    assert isinstance(params.max_depth, int)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--max-depth", "3.5", "max_depth='3.5' has a fractional part"),
        ("--n-estimators", "many", "n_estimators='many' is not a number"),
        ("--subsample", "nan", "subsample='nan' is not finite"),
        ("--learning-rate", "2", "learning_rate=2.0 is out of range"),
    ],
)
def test_bad_values_are_rejected_with_the_field_named(
    flag: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [f"{f}={v}" for f, v in ARGS.items()] + [f"{flag}={value}"]

    status = trial.main(argv)

    assert status == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.9341, "accuracy=0.934100"),
        (1e-9, "accuracy=0.000000"),
        (-1e-9, "accuracy=0.000000"),
        (123456789.5, "accuracy=123456789.500000"),
        (1.0, "accuracy=1.000000"),
    ],
)
def test_values_are_fixed_point(value: float, text: str) -> None:
    assert trial.format_metric("accuracy", value) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused(value: float) -> None:
    with pytest.raises(trial.MetricError, match="not finite"):
        trial.format_metric("auc", value)


def test_timestamps_never_repeat_or_go_back() -> None:
    moment = dt.datetime(2026, 12, 4, 15, 50, tzinfo=dt.UTC)
    readings = iter([moment, moment, moment - dt.timedelta(seconds=1)])
    stream = io.StringIO()
    writer = MetricWriter(stream, clock=lambda: next(readings))

    for value in (0.5, 0.6, 0.7):
        writer.write("accuracy", value)

    assert stream.getvalue().splitlines() == [
        "2026-12-04T15:50:00.000000Z accuracy=0.500000",
        "2026-12-04T15:50:00.000001Z accuracy=0.600000",
        "2026-12-04T15:50:00.000002Z accuracy=0.700000",
    ]
