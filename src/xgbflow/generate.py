"""Synthetic loan-default data whose Bayes-optimal accuracy is known exactly.

Rows describe loan applicants: twelve numeric columns drawn through a three-factor model
(wealth, stability, risk) so that related columns correlate as they would in real data,
and three categorical columns that depend on those factors. The label is drawn from a
fixed logistic function of the features; that function's probability is kept in the
`_true_probability` column, never a feature, so the accuracy of the Bayes-optimal
classifier on any sample is the mean of max(p, 1 - p) over its rows.

Missing values are injected completely at random after the labels are drawn. The
Bayes-optimal accuracy above is computed from the complete features, so with missing
values it is an upper bound on what any model can reach.

Rows are produced and written in chunks, each from its own seeded random stream, so a
million rows never sit in memory twice and the output depends only on the parameters.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from xgbflow import dataset, storage
from xgbflow.errors import ConfigError, XgbflowError

logger = logging.getLogger(__name__)

TARGET = "target"
ORACLE = "_true_probability"
NUMERIC = (
    "age",
    "income",
    "debt",
    "credit_score",
    "loan_amount",
    "loan_term_months",
    "employment_years",
    "num_credit_lines",
    "num_late_payments",
    "utilization",
    "savings",
    "monthly_expenses",
)
CATEGORICAL = ("region", "employment_type", "home_ownership")
REGIONS = ("north", "south", "east", "west", "central")
EMPLOYMENT_TYPES = ("salaried", "self_employed", "contract", "unemployed", "retired")
HOME_OWNERSHIP = ("own", "mortgage", "rent", "other")

#: Loadings of each numeric column on the (wealth, stability, risk) factors.
LOADINGS = np.array(
    [
        [0.10, 0.70, -0.10],  # age
        [0.70, 0.30, 0.00],  # income
        [0.30, 0.00, 0.50],  # debt
        [0.30, 0.30, -0.60],  # credit_score
        [0.40, 0.00, 0.30],  # loan_amount
        [0.00, 0.00, 0.30],  # loan_term_months
        [0.20, 0.75, 0.00],  # employment_years
        [0.30, 0.30, 0.20],  # num_credit_lines
        [0.00, -0.20, 0.70],  # num_late_payments
        [-0.20, 0.00, 0.60],  # utilization
        [0.70, 0.20, -0.20],  # savings
        [0.50, 0.10, 0.20],  # monthly_expenses
    ]
)

#: Value ranges that hold by construction; validation checks them.
RANGES: dict[str, tuple[float | None, float | None]] = {
    "age": (18, 85),
    "income": (0, None),
    "debt": (0, None),
    "credit_score": (300, 850),
    "loan_amount": (0, None),
    "loan_term_months": (12, 72),
    "employment_years": (0, 67),
    "num_credit_lines": (0, 30),
    "num_late_payments": (0, None),
    "utilization": (0, 1),
    "savings": (0, None),
    "monthly_expenses": (0, None),
}

#: The logit scale that puts the Bayes-optimal accuracy near 0.95 at balanced classes.
DEFAULT_SIGNAL = 5.3
CALIBRATION_ROWS = 200_000


@dataclass(frozen=True)
class GeneratorConfig:
    """Parameters of the synthetic data; the output depends on nothing else.

    positive_rate is the expected share of label 1; missing_rate the share of feature
    cells blanked at random; signal scales the label logit (higher is easier).
    """

    n_rows: int = 100_000
    seed: int = 42
    positive_rate: float = 0.5
    missing_rate: float = 0.02
    signal: float = DEFAULT_SIGNAL
    chunk_rows: int = 100_000

    def __post_init__(self) -> None:
        checks = [
            ("n_rows", self.n_rows, self.n_rows >= 1, "an integer >= 1"),
            ("seed", self.seed, self.seed >= 0, "an integer >= 0"),
            (
                "positive_rate",
                self.positive_rate,
                0.01 <= self.positive_rate <= 0.99,
                "between 0.01 and 0.99",
            ),
            (
                "missing_rate",
                self.missing_rate,
                0 <= self.missing_rate <= 0.5,
                "between 0 and 0.5",
            ),
            ("signal", self.signal, self.signal > 0, "a number > 0"),
            ("chunk_rows", self.chunk_rows, self.chunk_rows >= 1, "an integer >= 1"),
        ]
        for name, value, ok, expected in checks:
            if not ok:
                raise ConfigError(
                    f"{name}={value!r} is out of range; expected {expected}"
                )


def expit(x):
    """The logistic function, 1 / (1 + e^-x), elementwise (clipped: no overflow)."""
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, dtype=np.float64), -500, 500)))


def draw_features(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """n complete rows of features (no missing values, no label)."""
    factors = rng.standard_normal((n, 3))
    own_weight = np.sqrt(1.0 - np.square(LOADINGS).sum(axis=1))
    z = factors @ LOADINGS.T + rng.standard_normal((n, len(NUMERIC))) * own_weight
    wealth, stability, risk = factors.T

    age = np.clip(np.round(42 + 13 * z[:, 0]), 18, 85)
    term_index = np.clip(np.floor(expit(1.2 * z[:, 5]) * 6), 0, 5)
    frame = pd.DataFrame(
        {
            "age": age,
            "income": np.round(np.exp(10.9 + 0.45 * z[:, 1]), -2),
            "debt": np.round(np.exp(9.6 + 0.8 * z[:, 2])),
            "credit_score": np.clip(np.round(680 + 70 * z[:, 3]), 300, 850),
            "loan_amount": np.round(np.exp(9.3 + 0.6 * z[:, 4]), -2),
            "loan_term_months": 12 * (term_index + 1),
            "employment_years": np.round(
                np.clip(8 + 6 * z[:, 6], 0, np.maximum(age - 18, 0)), 1
            ),
            "num_credit_lines": np.clip(np.round(5 + 2.5 * z[:, 7]), 0, 30),
            "num_late_payments": np.maximum(np.floor(np.exp(0.9 * z[:, 8]) - 0.6), 0),
            "utilization": np.round(expit(-0.5 + 1.1 * z[:, 9]), 4),
            "savings": np.round(np.exp(9.0 + 1.0 * z[:, 10])),
            "monthly_expenses": np.round(np.exp(7.6 + 0.35 * z[:, 11])),
        }
    )
    frame["region"] = rng.choice(REGIONS, size=n, p=[0.22, 0.26, 0.18, 0.20, 0.14])
    frame["employment_type"] = _choose(
        rng,
        EMPLOYMENT_TYPES,
        np.stack(
            [
                1.2 * stability,
                0.3 * wealth,
                np.zeros(n),
                -1.4 * stability - 1.0,
                np.where(age >= 62, 2.5, -4.0),
            ],
            axis=1,
        ),
    )
    frame["home_ownership"] = _choose(
        rng,
        HOME_OWNERSHIP,
        np.stack(
            [
                wealth + 0.04 * (age - 42),
                0.6 * wealth + 0.3,
                -0.8 * wealth + 0.2,
                np.full(n, -2.0),
            ],
            axis=1,
        ),
    )
    frame[list(NUMERIC)] = frame[list(NUMERIC)].astype(np.float64)
    _ = risk  # the risk factor acts through the columns that load on it
    return frame


def _choose(rng: np.random.Generator, values: tuple[str, ...], logits: np.ndarray):
    """One categorical draw per row from softmax(logits)."""
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    cumulative = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    index = (rng.random((len(logits), 1)) > cumulative).sum(axis=1)
    return np.asarray(values, dtype=object)[np.minimum(index, len(values) - 1)]


_EMPLOYMENT_EFFECT = {
    "salaried": -0.3,
    "self_employed": 0.2,
    "contract": 0.4,
    "unemployed": 1.1,
    "retired": 0.0,
}
_HOME_EFFECT = {"own": -0.3, "mortgage": 0.0, "rent": 0.3, "other": 0.2}


def risk_score(features: pd.DataFrame) -> np.ndarray:
    """The label's logit before scaling: an additive, mostly monotone risk score.

    Debt and the loan count through their ratio to income, which is why preprocessing
    derives those ratios.
    """
    debt_to_income = (features["debt"] + features["loan_amount"]) / features["income"]
    age = (features["age"] - 42) / 13
    return (
        1.8 * np.minimum(debt_to_income, 3.0)
        - 0.012 * (features["credit_score"] - 680)
        + 0.45 * np.minimum(features["num_late_payments"], 6)
        + 1.5 * features["utilization"]
        - 0.35 * np.log1p(features["savings"] / 8000)
        - 0.04 * features["employment_years"]
        + 0.25 * np.square(age)
        + features["employment_type"].map(_EMPLOYMENT_EFFECT).to_numpy()
        + features["home_ownership"].map(_HOME_EFFECT).to_numpy()
    ).to_numpy()


def calibrate_intercept(config: GeneratorConfig) -> float:
    """The logit offset that makes the expected positive share equal positive_rate."""
    rng = np.random.default_rng([config.seed, 0xCA1])
    score = config.signal * risk_score(draw_features(rng, CALIBRATION_ROWS))
    target = config.positive_rate
    low, high = -score.max() - 50, -score.min() + 50
    for _ in range(100):
        middle = (low + high) / 2
        if expit(score + middle).mean() < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def generate_chunk(
    config: GeneratorConfig, index: int, n: int, intercept: float
) -> pd.DataFrame:
    """Chunk `index` of the dataset: features, label, true probability; with gaps."""
    rng = np.random.default_rng([config.seed, index])
    frame = draw_features(rng, n)
    probability = expit(config.signal * risk_score(frame) + intercept)
    frame[TARGET] = (rng.random(n) < probability).astype(np.int64)
    frame[ORACLE] = probability

    for name in (*NUMERIC, *CATEGORICAL):
        blank = rng.random(n) < config.missing_rate
        frame.loc[blank, name] = np.nan if name in NUMERIC else None
    return frame


def schema() -> dataset.FeatureSchema:
    return dataset.FeatureSchema(
        target=TARGET, numeric=NUMERIC, categorical=CATEGORICAL, oracle=ORACLE
    )


def _arrow_schema() -> pa.Schema:
    fields = [pa.field(name, pa.float64()) for name in NUMERIC]
    fields += [pa.field(name, pa.string()) for name in CATEGORICAL]
    fields += [pa.field(TARGET, pa.int64()), pa.field(ORACLE, pa.float64())]
    return pa.schema(fields)


def generate_dataset(uri: str, config: GeneratorConfig | None = None) -> dict:
    """Write the synthetic dataset to `uri` (a dataset directory); returns its card."""
    config = config or GeneratorConfig()
    feature_schema = schema()
    stats = dataset.describe_columns(feature_schema)
    intercept = calibrate_intercept(config)
    n_chunks = math.ceil(config.n_rows / config.chunk_rows)
    bayes_correct = 0.0
    data_uri = storage.join(uri, dataset.DATA_FILE)

    with storage.open_for_writing(data_uri) as handle:
        writer = pq.ParquetWriter(handle, _arrow_schema(), compression="zstd")
        try:
            for index in range(n_chunks):
                start = index * config.chunk_rows
                n = min(config.chunk_rows, config.n_rows - start)
                chunk = generate_chunk(config, index, n, intercept)
                for name, column in stats.items():
                    column.update(chunk[name])
                p = chunk[ORACLE].to_numpy()
                bayes_correct += float(np.maximum(p, 1 - p).sum())
                writer.write_table(
                    pa.Table.from_pandas(
                        chunk, schema=_arrow_schema(), preserve_index=False
                    )
                )
                logger.info(
                    "generated %d of %d rows (chunk %d/%d)",
                    start + n,
                    config.n_rows,
                    index + 1,
                    n_chunks,
                )
        finally:
            writer.close()

    card = {
        "source": "synthetic",
        "rows": config.n_rows,
        "schema": feature_schema.to_dict(),
        "statistics": {name: column.summary() for name, column in stats.items()},
        "expectations": {
            "ranges": {name: list(bounds) for name, bounds in RANGES.items()},
            "labels": [0, 1],
        },
        "generator": asdict(config) | {"intercept": intercept},
        "bayes_accuracy": bayes_correct / config.n_rows,
        "content_sha256": dataset.hash_file(data_uri),
    }
    dataset.write_card(uri, card)
    logger.info("wrote %d rows to %s", config.n_rows, uri)
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="xgbflow generate",
        description="Write a synthetic dataset and its data card.",
    )
    parser.add_argument("output", help="dataset directory: a path or s3:// / gs:// URI")
    defaults = GeneratorConfig()
    parser.add_argument("--rows", type=int, default=defaults.n_rows)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--positive-rate", type=float, default=defaults.positive_rate)
    parser.add_argument("--missing-rate", type=float, default=defaults.missing_rate)
    parser.add_argument("--signal", type=float, default=defaults.signal)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    try:
        config = GeneratorConfig(
            n_rows=args.rows,
            seed=args.seed,
            positive_rate=args.positive_rate,
            missing_rate=args.missing_rate,
            signal=args.signal,
        )
        card = generate_dataset(args.output, config)
    except XgbflowError as exc:
        print(f"xgbflow generate: {exc}", file=sys.stderr)
        return 2
    print(f"{card['rows']} rows, Bayes-optimal accuracy {card['bayes_accuracy']:.4f}")
    return 0
