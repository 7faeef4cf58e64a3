"""Split the data, then build and fit the feature preprocessing on the training rows.

The split comes first (stratified on the label, seeded), and every fitted statistic
(medians, means, scales, category lists) comes from the training split only.

Preprocessing, per kind of column:
- numeric: median imputation, then standardisation;
- derived: ratios of two numeric columns (debt, loan amount and monthly expenses to
  income, where those columns exist), then the same imputation and scaling; a zero or
  missing denominator gives a missing ratio;
- categorical: one-hot encoding. A missing value is its own category (the empty string).
  A category never seen in training encodes as all zeros, "none of the known
  categories", and the model scores the row from its other features.

All arithmetic is done in float32 with statistics rounded to float32 and scales rounded
to powers of two. That makes every operation exact or correctly rounded in both sklearn
and onnxruntime, so the exported ONNX graph reproduces the features bit for bit; an
ordinary float64 StandardScaler moves a few values across tree split thresholds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from xgbflow import dataset
from xgbflow.dataset import FeatureSchema
from xgbflow.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

#: Ratios that carry meaning in the synthetic loan data, as (numerator, denominator).
DEFAULT_RATIOS: tuple[tuple[str, str], ...] = (
    ("debt", "income"),
    ("loan_amount", "income"),
    ("monthly_expenses", "income"),
)


@dataclass(frozen=True)
class Splits:
    """Row-disjoint train, validation and test tables (raw columns, label included)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame

    def items(self):
        return (
            ("train", self.train),
            ("validation", self.validation),
            ("test", self.test),
        )


def split_dataset(
    table: pd.DataFrame,
    schema: FeatureSchema,
    *,
    validation_size: float = 0.15,
    test_size: float = 0.15,
    seed: int = 42,
) -> Splits:
    """A stratified, seeded three-way split of `table`."""
    if not (0 < validation_size < 1 and 0 < test_size < 1):
        raise ConfigError(
            f"validation_size={validation_size!r}, test_size={test_size!r}; "
            "expected fractions strictly between 0 and 1"
        )
    if validation_size + test_size >= 0.9:
        raise ConfigError(
            f"validation_size + test_size = {validation_size + test_size:.2f}; "
            "expected under 0.9 so that training keeps at least 10% of the rows"
        )
    label = table[schema.target]
    if label.value_counts().min() < 3:
        raise DataError(
            f"column {schema.target!r} has a class with fewer than 3 rows; "
            "expected at least 3 per class to stratify train, validation and test"
        )

    rest, test = train_test_split(
        table, test_size=test_size, stratify=label, random_state=seed
    )
    train, validation = train_test_split(
        rest,
        test_size=validation_size / (1 - test_size),
        stratify=rest[schema.target],
        random_state=seed,
    )
    logger.info(
        "split %d rows into train %d, validation %d, test %d",
        len(table),
        len(train),
        len(validation),
        len(test),
    )
    return Splits(train, validation, test)


class RatioFeatures(TransformerMixin, BaseEstimator):
    """Ratios of input columns: output j is column numerators[j] / denominators[j].

    A zero or missing denominator, or a missing numerator, gives NaN. Output is float32.
    Columns are addressed by position so that a column shared by several ratios (income,
    say) is passed in once: the ONNX converter merges repeated inputs.
    """

    def __init__(
        self,
        numerators: tuple[int, ...] = (),
        denominators: tuple[int, ...] = (),
        names: tuple[str, ...] = (),
    ) -> None:
        self.numerators = numerators
        self.denominators = denominators
        self.names = names

    def fit(self, X, y=None):  # noqa: N803 - sklearn's argument name
        self.n_features_in_ = np.asarray(X).shape[1]
        if not len(self.numerators) == len(self.denominators) == len(self.names):
            raise ConfigError(
                f"RatioFeatures got {len(self.numerators)} numerators, "
                f"{len(self.denominators)} denominators and {len(self.names)} names; "
                "expected one of each per ratio"
            )
        return self

    def transform(self, X):  # noqa: N803
        values = np.asarray(X, dtype=np.float32)
        numerator = values[:, list(self.numerators)]
        denominator = values[:, list(self.denominators)]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = numerator / denominator
        return np.where(denominator == 0, np.float32(np.nan), ratio).astype(np.float32)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.names, dtype=object)


def ratio_pairs(schema: FeatureSchema, ratios=DEFAULT_RATIOS) -> list[tuple[str, str]]:
    """The ratios whose two columns are both numeric features of `schema`."""
    return [
        (top, bottom)
        for top, bottom in ratios
        if top in schema.numeric and bottom in schema.numeric
    ]


def _scaled() -> list[tuple[str, object]]:
    return [
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("scale", StandardScaler()),
    ]


def build_preprocessor(
    schema: FeatureSchema, ratios=DEFAULT_RATIOS
) -> ColumnTransformer:
    """The unfitted ColumnTransformer for `schema`'s features."""
    branches: list[tuple[str, object, list[str]]] = []
    if schema.numeric:
        branches.append(("numeric", Pipeline(_scaled()), list(schema.numeric)))
    pairs = ratio_pairs(schema, ratios)
    if pairs:
        columns = list(dict.fromkeys(name for pair in pairs for name in pair))
        ratio = RatioFeatures(
            numerators=tuple(columns.index(top) for top, _ in pairs),
            denominators=tuple(columns.index(bottom) for _, bottom in pairs),
            names=tuple(f"{top}_to_{bottom}" for top, bottom in pairs),
        )
        derived = Pipeline([("ratio", ratio), *_scaled()])
        branches.append(("derived", derived, columns))
    if schema.categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        branches.append(("categorical", encoder, list(schema.categorical)))
    if not branches:
        raise DataError("the schema has no feature columns; expected at least one")
    return ColumnTransformer(
        branches, sparse_threshold=0.0, verbose_feature_names_out=True
    )


def fit_preprocessor(
    preprocessor: ColumnTransformer, train: pd.DataFrame
) -> ColumnTransformer:
    """Fit on the training rows (a model frame), then round statistics for export."""
    preprocessor.fit(train)
    for _, transformer, _ in preprocessor.transformers_:
        for step in getattr(transformer, "named_steps", {}).values():
            _round_for_float32(step)
    return preprocessor


def _round_for_float32(step: object) -> None:
    if isinstance(step, SimpleImputer):
        step.statistics_ = step.statistics_.astype(np.float32).astype(np.float64)
    elif isinstance(step, StandardScaler):
        step.mean_ = step.mean_.astype(np.float32).astype(np.float64)
        scale = np.where(step.scale_ > 0, step.scale_, 1.0)
        step.scale_ = np.exp2(np.round(np.log2(scale)))


def transform_table(
    preprocessor: ColumnTransformer, table: pd.DataFrame, schema: FeatureSchema
) -> pd.DataFrame:
    """The model's input features for the rows of a raw table, one named column each.

    Columns carry the fitted preprocessor's output names (`numeric__income`,
    `derived__debt_to_income`, `categorical__region_north`, ...) and rows keep the
    table's index, so every row can be set beside its raw values.
    """
    features = preprocessor.transform(dataset.to_model_frame(table, schema))
    return pd.DataFrame(
        features, columns=preprocessor.get_feature_names_out(), index=table.index
    )
