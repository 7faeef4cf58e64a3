"""Check a dataset before anything is fitted on it.

Rules: the schema (every feature and the label present, with the expected kind of
values), value ranges from the data card's expectations, the missing ratio of each
column, the label's values and balance, the share of duplicate rows, and the row count.
The result is a JSON-ready report with one entry per check. Any failed check raises
ValidationError naming the column, the rule, the observed and the allowed value.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from xgbflow.dataset import FeatureSchema
from xgbflow.errors import ConfigError, ValidationError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValidationConfig:
    """Thresholds of the rules; defaults suit the synthetic data and typical tables."""

    min_rows: int = 200
    max_missing_ratio: float = 0.30
    min_minority_share: float = 0.05
    max_duplicate_ratio: float = 0.01

    def __post_init__(self) -> None:
        for name in ("max_missing_ratio", "min_minority_share", "max_duplicate_ratio"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"{name}={value!r} is out of range; expected 0 to 1")
        if self.min_rows < 1:
            raise ConfigError(f"min_rows={self.min_rows!r}; expected an integer >= 1")


@dataclass(frozen=True)
class Check:
    rule: str
    column: str | None
    observed: Any
    allowed: Any
    passed: bool

    def describe(self) -> str:
        where = f"column {self.column!r}" if self.column else "table"
        return (
            f"{where}: rule {self.rule} observed {self.observed!r}, "
            f"allowed {self.allowed}"
        )


def validate_table(
    table: pd.DataFrame,
    schema: FeatureSchema,
    expectations: dict[str, Any] | None = None,
    config: ValidationConfig | None = None,
) -> dict[str, Any]:
    """Run every rule; returns the report, or raises ValidationError if any failed."""
    config = config or ValidationConfig()
    expectations = expectations or {}
    checks = [
        *_schema_checks(table, schema),
        *_range_checks(table, expectations.get("ranges", {})),
        *_missing_checks(table, schema, config.max_missing_ratio),
        *_label_checks(table, schema, expectations.get("labels", [0, 1]), config),
        _duplicate_check(table, schema, config.max_duplicate_ratio),
        Check(
            "min_rows",
            None,
            len(table),
            f">= {config.min_rows}",
            len(table) >= config.min_rows,
        ),
    ]
    failed = [check for check in checks if not check.passed]
    report = {
        "passed": not failed,
        "rows": len(table),
        "checks": [asdict(check) for check in checks],
        "failures": [check.describe() for check in failed],
        "config": asdict(config),
    }
    if failed:
        raise ValidationError(
            f"data validation failed {len(failed)} of {len(checks)} checks: "
            + "; ".join(report["failures"]),
            report,
        )
    logger.info("data validation passed %d checks on %d rows", len(checks), len(table))
    return report


def _schema_checks(table: pd.DataFrame, schema: FeatureSchema) -> list[Check]:
    checks = []
    for name, kind in [
        *((n, "numeric") for n in schema.numeric),
        *((n, "categorical") for n in schema.categorical),
        (schema.target, "label"),
    ]:
        if name not in table.columns:
            checks.append(Check("column_present", name, "absent", "present", False))
            continue
        column = table[name]
        if kind == "numeric":
            ok = pd.api.types.is_numeric_dtype(
                column
            ) and not pd.api.types.is_bool_dtype(column)
            checks.append(
                Check("numeric_type", name, str(column.dtype), "a number type", ok)
            )
            finite = (
                np.isfinite(column.dropna().to_numpy(dtype=np.float64)).all()
                if ok
                else True
            )
            checks.append(
                Check("finite_values", name, bool(finite), "no inf", bool(finite))
            )
        elif kind == "categorical":
            values = column.dropna()
            ok = values.map(lambda v: isinstance(v, str)).all()
            checks.append(
                Check("string_type", name, str(column.dtype), "strings", bool(ok))
            )
    return checks


def _range_checks(table: pd.DataFrame, ranges: dict[str, list]) -> list[Check]:
    checks = []
    for name, (low, high) in ranges.items():
        if name not in table.columns or not pd.api.types.is_numeric_dtype(table[name]):
            continue
        values = table[name].dropna()
        if values.empty:
            continue
        observed = [float(values.min()), float(values.max())]
        ok = (low is None or observed[0] >= low) and (
            high is None or observed[1] <= high
        )
        bounds = ("-inf" if low is None else low, "inf" if high is None else high)
        allowed = f"within [{bounds[0]}, {bounds[1]}]"
        checks.append(Check("value_range", name, observed, allowed, ok))
    return checks


def _missing_checks(
    table: pd.DataFrame, schema: FeatureSchema, limit: float
) -> list[Check]:
    checks = []
    for name in schema.features:
        if name in table.columns:
            ratio = round(float(table[name].isna().mean()), 6)
            checks.append(
                Check("missing_ratio", name, ratio, f"<= {limit}", ratio <= limit)
            )
    if schema.target in table.columns:
        missing = int(table[schema.target].isna().sum())
        checks.append(
            Check("label_present", schema.target, missing, "0 missing", missing == 0)
        )
    return checks


def _label_checks(
    table: pd.DataFrame,
    schema: FeatureSchema,
    allowed_labels: list,
    config: ValidationConfig,
) -> list[Check]:
    if schema.target not in table.columns:
        return []
    label = table[schema.target].dropna()
    values = sorted(label.unique().tolist())
    checks = [
        Check(
            "label_values",
            schema.target,
            values,
            allowed_labels,
            set(values) <= set(allowed_labels) and len(values) == 2,
        )
    ]
    minority = float(label.value_counts(normalize=True).min()) if len(values) else 0.0
    checks.append(
        Check(
            "label_balance",
            schema.target,
            round(minority, 6),
            f"minority share >= {config.min_minority_share}",
            minority >= config.min_minority_share,
        )
    )
    return checks


def _duplicate_check(table: pd.DataFrame, schema: FeatureSchema, limit: float) -> Check:
    columns = [c for c in (*schema.features, schema.target) if c in table.columns]
    ratio = (
        round(float(table.duplicated(subset=columns).mean()), 6) if len(table) else 0.0
    )
    return Check("duplicate_rows", None, ratio, f"<= {limit}", ratio <= limit)
