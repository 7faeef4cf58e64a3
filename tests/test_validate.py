import numpy as np
import pytest

from xgbflow import dataset, validate
from xgbflow.errors import ConfigError, ValidationError


@pytest.fixture
def synthetic(small_dataset):
    return dataset.read_dataset(str(small_dataset))


def test_generated_data_passes_every_check(synthetic):
    table, schema, card = synthetic

    report = validate.validate_table(table, schema, card["expectations"])

    assert report["passed"]
    assert report["failures"] == []
    rules = {check["rule"] for check in report["checks"]}
    assert rules >= {
        "numeric_type",
        "string_type",
        "value_range",
        "missing_ratio",
        "label_values",
        "label_balance",
        "duplicate_rows",
        "min_rows",
    }


def _break_range(table):
    table.loc[table.index[:3], "age"] = 200.0


def _break_missing(table):
    table.loc[table.index[: len(table) // 2], "income"] = np.nan


def _break_type(table):
    table["region"] = 7


def _break_labels(table):
    table.loc[table.index[:5], "target"] = 2


def _break_balance(table):
    table["target"] = 0
    table.loc[table.index[:10], "target"] = 1


def _break_duplicates(table):
    table.iloc[1:200] = table.iloc[[0] * 199].to_numpy()


def _drop_column(table):
    del table["savings"]


def _break_inf(table):
    table.loc[table.index[0], "debt"] = np.inf


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (
            _break_range,
            "column 'age': rule value_range observed [18.0, 200.0], "
            "allowed within [18, 85]",
        ),
        (_break_missing, "column 'income': rule missing_ratio observed 0.5"),
        (
            _break_type,
            "column 'region': rule string_type observed 'int64', allowed strings",
        ),
        (_break_labels, "column 'target': rule label_values observed [0, 1, 2]"),
        (_break_balance, "column 'target': rule label_balance observed 0.0025"),
        (_break_duplicates, "table: rule duplicate_rows observed 0.04975"),
        (_drop_column, "column 'savings': rule column_present observed 'absent'"),
        (_break_inf, "column 'debt': rule finite_values observed False"),
    ],
)
def test_each_violation_is_named(synthetic, damage, expected):
    table, schema, card = synthetic
    table = table.copy()
    damage(table)

    with pytest.raises(ValidationError) as caught:
        validate.validate_table(table, schema, card["expectations"])

    assert expected in str(caught.value)
    assert caught.value.report["passed"] is False


def test_too_few_rows(synthetic):
    table, schema, card = synthetic

    with pytest.raises(ValidationError, match="rule min_rows observed 50"):
        validate.validate_table(table.head(50), schema, card["expectations"])


def test_thresholds_are_checked():
    with pytest.raises(ConfigError, match="max_missing_ratio=2"):
        validate.ValidationConfig(max_missing_ratio=2)
