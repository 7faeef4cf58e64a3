"""`xgbflow trial`: one Katib trial, the program the Experiment's trial template runs.

It trains once with the five searched hyperparameters, as Katib substitutes them into
the command line, and prints metrics for Katib's StdOut collector: after every boosting
round the validation `accuracy=`, then the final validation `accuracy=`, `precision=`,
`recall=`, `f1=` and `auc=` of the model early stopping kept. Each metric is one line,

    2026-12-04T15:50:00.123456Z accuracy=0.934100

an RFC 3339 UTC timestamp (the collector orders observations by it, and `latest` picks
the last), then `name=value` in fixed-point notation: never an exponent, never nan or
inf, so both Katib's default filter and a stricter custom one read it. Timestamps are
strictly increasing, so the final accuracy is always the latest.

Data: a dataset directory or a CSV/Parquet file given by --data-uri, else the default
synthetic data generated in a scratch directory (seeded, so every trial sees the same
rows). The split is the pipeline's, with the same seed, so the validation rows the
search scores on are the ones the pipeline's early stopping watches; the test split is
never touched. Logs go to stderr and carry no `name=value` text, because in the cluster
stderr lands in the same file the collector parses.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import pandas as pd

from xgbflow import dataset, storage
from xgbflow.config import TrainParams
from xgbflow.dataset import FeatureSchema
from xgbflow.errors import ConfigError, XgbflowError

logger = logging.getLogger(__name__)

#: The metrics the trial prints, objective first, as the Experiment names them.
OBJECTIVE = "accuracy"
METRIC_NAMES = (OBJECTIVE, "precision", "recall", "f1", "auc")
#: Digits after the decimal point; 1e-6 is far below any difference a search acts on.
DECIMALS = 6
#: The command-line flag of each searched hyperparameter, in contract order.
FLAGS = {
    "max_depth": "--max-depth",
    "learning_rate": "--learning-rate",
    "n_estimators": "--n-estimators",
    "min_child_weight": "--min-child-weight",
    "subsample": "--subsample",
}
DEFAULT_ROWS = 100_000
DEFAULT_SEED = 42


class MetricError(XgbflowError):
    """A metric value that the collector could not read (nan or infinite)."""


def format_timestamp(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with microseconds and a `Z`, e.g. 2026-12-04T15:50:00.123456Z."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def format_metric(name: str, value: float) -> str:
    """`name=value` in fixed-point notation; nan and infinities are refused."""
    number = float(value)
    if not math.isfinite(number):
        raise MetricError(
            f"metric {name}={number!r} is not finite; expected a finite number, "
            "which is all Katib's collector can read"
        )
    text = f"{number:.{DECIMALS}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]
    return f"{name}={text}"


@dataclass
class MetricWriter:
    """Writes one timestamped metric line at a time and flushes it at once.

    The clock is read for every line; a line never carries a time at or before the
    previous one (equal or backward clock readings are moved on by a microsecond).
    """

    stream: TextIO
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
    _last: dt.datetime | None = None

    def write(self, name: str, value: float) -> str:
        text = format_metric(name, value)
        moment = self.clock()
        if self._last is not None and moment <= self._last:
            moment = self._last + dt.timedelta(microseconds=1)
        self._last = moment
        line = f"{format_timestamp(moment)} {text}"
        self.stream.write(line + "\n")
        self.stream.flush()
        return line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xgbflow trial",
        description=(
            "Train once with the given hyperparameters and print validation metrics "
            "for Katib's StdOut collector."
        ),
    )
    searched = parser.add_argument_group(
        "searched hyperparameters (as Katib gives them)"
    )
    for name, flag in FLAGS.items():
        # Text, not int/float: TrainParams coerces "6" and "6.0" and names bad values.
        searched.add_argument(flag, dest=name, required=True, metavar="VALUE")
    data = parser.add_argument_group("data (the default synthetic data unless given)")
    data.add_argument(
        "--data-uri",
        default="",
        help="a dataset directory, or a CSV/Parquet file to load",
    )
    data.add_argument("--target", default="target", help="label column of a file")
    data.add_argument(
        "--categorical-columns",
        default="",
        help="comma-separated categorical columns of a file",
    )
    data.add_argument(
        "--rows", type=int, default=DEFAULT_ROWS, help="synthetic rows to generate"
    )
    data.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help="seed of the synthetic data, the split and the model",
    )
    return parser


def trial_params(args: argparse.Namespace) -> TrainParams:
    """The training parameters: the five searched values coerced, the seed given."""
    values = {name: getattr(args, name) for name in FLAGS}
    return TrainParams.from_mapping(values | {"seed": args.seed})


def read_trial_data(
    args: argparse.Namespace, scratch: str
) -> tuple[pd.DataFrame, FeatureSchema]:
    """The table to split: a dataset directory as is, else acquired into `scratch`."""
    from xgbflow import steps

    uri = args.data_uri
    if uri and storage.exists(storage.join(uri, dataset.CARD_FILE)):
        table, schema, _ = dataset.read_dataset(uri)
        return table, schema
    if not uri and args.rows < 1:
        raise ConfigError(f"--rows={args.rows} is not positive; expected rows >= 1")
    steps.acquire_data(
        scratch,
        data_uri=uri,
        target=args.target,
        categorical_columns=args.categorical_columns,
        n_rows=args.rows,
        seed=args.seed,
    )
    table, schema, _ = dataset.read_dataset(scratch)
    return table, schema


def run_trial(
    table: pd.DataFrame,
    schema: FeatureSchema,
    params: TrainParams,
    writer: MetricWriter,
) -> dict[str, float]:
    """Train on the pipeline's split, print every round and the final metrics."""
    from xgbflow import evaluate, preprocess, train

    splits = preprocess.split_dataset(table, schema, seed=params.seed)
    preprocessor = preprocess.fit_preprocessor(
        preprocess.build_preprocessor(schema),
        dataset.to_model_frame(splits.train, schema),
    )

    def report_round(_: int, latest: dict[str, dict[str, float]]) -> None:
        writer.write(OBJECTIVE, 1.0 - latest["validation"]["error"])

    trained = train.train_model(
        preprocessor,
        splits.train,
        splits.validation,
        schema,
        params,
        callbacks=[report_round],
    )
    probability = train.predict_proba(trained.pipeline, splits.validation, schema)
    scores = evaluate.classification_metrics(
        dataset.labels(splits.validation, schema), probability
    )
    final = {
        "accuracy": scores["accuracy"],
        "precision": scores["precision"],
        "recall": scores["recall"],
        "f1": scores["f1"],
        "auc": scores["roc_auc"],
    }
    for name in METRIC_NAMES:
        writer.write(name, final[name])
    return final


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # stderr, and no name=value text: in the cluster it shares the collector's file.
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(levelname)s %(name)s %(message)s",
    )

    try:
        params = trial_params(args)
        with tempfile.TemporaryDirectory(prefix="xgbflow-trial-") as scratch:
            table, schema = read_trial_data(args, scratch)
            final = run_trial(table, schema, params, MetricWriter(sys.stdout))
    except XgbflowError as exc:
        print(f"xgbflow trial: {exc}", file=sys.stderr)
        return 2
    logger.info("trial finished: validation accuracy %.4f", final[OBJECTIVE])
    return 0
