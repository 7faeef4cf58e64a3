"""Typed training configuration, shared by the pipeline, Katib trials and notebooks.

The five searched hyperparameters carry the names Katib's Experiment uses. Values often
arrive as text (command-line arguments, KFP parameters, YAML), so
`TrainParams.from_mapping` coerces them: "6" and 6.0 are accepted for an integer
parameter, 3.5 is not.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from xgbflow.errors import ConfigError


@dataclass(frozen=True)
class TrainParams:
    """XGBoost hyperparameters and the training procedure around them.

    n_estimators is the most boosting rounds; early stopping on the validation split
    ends training sooner when the validation log loss has not improved for
    early_stopping_rounds rounds. cv_folds > 1 also runs k-fold cross-validation.
    """

    max_depth: int = 4
    learning_rate: float = 0.1
    n_estimators: int = 600
    min_child_weight: int = 1
    subsample: float = 0.8
    colsample_bytree: float = 1.0
    reg_lambda: float = 1.0
    early_stopping_rounds: int = 50
    cv_folds: int = 0
    seed: int = 42

    def __post_init__(self) -> None:
        for spec in fields(self):
            low, high = _BOUNDS[spec.name]
            value = getattr(self, spec.name)
            if not low <= value <= high:
                raise ConfigError(
                    f"{spec.name}={value!r} is out of range; expected a value "
                    f"from {low} to {high}"
                )
        if self.cv_folds == 1:
            raise ConfigError(
                "cv_folds=1 is not a cross-validation; expected 0 or >= 2"
            )

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> TrainParams:
        """Build from loosely typed values, coercing each to its field's type."""
        known = {spec.name: spec for spec in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(
                f"unknown training parameter(s) {unknown}; "
                f"expected some of {sorted(known)}"
            )
        coerced = {
            name: coerce(name, value, known[name].type)
            for name, value in values.items()
        }
        return cls(**coerced)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def xgboost_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for xgboost.XGBClassifier."""
        return {
            "tree_method": "hist",
            "objective": "binary:logistic",
            # Early stopping watches the last metric listed: the validation log loss.
            "eval_metric": ["error", "logloss"],
            "max_depth": self.max_depth,
            "learning_rate": self.learning_rate,
            "n_estimators": self.n_estimators,
            "min_child_weight": self.min_child_weight,
            "subsample": self.subsample,
            "colsample_bytree": self.colsample_bytree,
            "reg_lambda": self.reg_lambda,
            "early_stopping_rounds": self.early_stopping_rounds,
            "random_state": self.seed,
            "n_jobs": 0,
        }


_BOUNDS: dict[str, tuple[float, float]] = {
    "max_depth": (1, 32),
    "learning_rate": (1e-4, 1.0),
    "n_estimators": (1, 100_000),
    "min_child_weight": (0, 1_000),
    "subsample": (0.05, 1.0),
    "colsample_bytree": (0.05, 1.0),
    "reg_lambda": (0.0, 1_000.0),
    "early_stopping_rounds": (1, 10_000),
    "cv_folds": (0, 20),
    "seed": (0, 2**31 - 1),
}


def coerce(name: str, value: Any, kind: Any) -> int | float:
    """`value` as an int or float, according to `kind` ("int"/int or "float"/float).

    Integral values given as strings or floats ("6", "6.0", 6.0) become ints; anything
    with a fractional part, or not a number at all, raises ConfigError.
    """
    want_int = kind in (int, "int")
    expected = "an integer" if want_int else "a number"
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is a boolean; expected {expected}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{name}={value!r} is not a number; expected {expected}"
        ) from exc
    if not math.isfinite(number):
        raise ConfigError(f"{name}={value!r} is not finite; expected {expected}")
    if not want_int:
        return number
    if not number.is_integer():
        raise ConfigError(
            f"{name}={value!r} has a fractional part; expected {expected}"
        )
    return int(number)


#: The MLflow store used when nothing else is configured: SQLite under ./mlruns.
LOCAL_TRACKING_STORE = Path("mlruns")


def resolve_tracking_uri(uri: str = "") -> str:
    """The explicit URI, else MLFLOW_TRACKING_URI, else the local SQLite store."""
    if uri:
        return uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    store = LOCAL_TRACKING_STORE.resolve()
    return f"sqlite:///{store / 'mlflow.db'}"
