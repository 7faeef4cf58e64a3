import numpy as np
import pandas as pd
import pytest

from xgbflow import dataset, generate
from xgbflow.errors import ConfigError


def make(tmp_path, name="data", **overrides):
    config = generate.GeneratorConfig(**({"n_rows": 3_000} | overrides))
    card = generate.generate_dataset(str(tmp_path / name), config)
    return pd.read_parquet(tmp_path / name / dataset.DATA_FILE), card


def test_schema_has_enough_numeric_and_categorical_columns(tmp_path):
    table, card = make(tmp_path)

    schema = dataset.FeatureSchema.from_dict(card["schema"])
    assert len(schema.numeric) >= 12
    assert len(schema.categorical) >= 3
    assert all(pd.api.types.is_numeric_dtype(table[c]) for c in schema.numeric)
    assert all(table[c].dropna().map(type).eq(str).all() for c in schema.categorical)
    assert schema.oracle not in schema.features


def test_same_parameters_give_identical_bytes(tmp_path):
    _, first = make(tmp_path, "a", chunk_rows=1_000)
    _, second = make(tmp_path, "b", chunk_rows=1_000)
    _, other_seed = make(tmp_path, "c", chunk_rows=1_000, seed=43)

    assert first["content_sha256"] == second["content_sha256"]
    assert first["content_sha256"] != other_seed["content_sha256"]
    assert first["content_sha256"] == dataset.hash_file(
        str(tmp_path / "a" / dataset.DATA_FILE)
    )


def test_chunked_output_has_every_row(tmp_path):
    table, card = make(tmp_path, n_rows=2_500, chunk_rows=1_000)

    assert len(table) == card["rows"] == 2_500
    assert card["statistics"]["age"]["count"] == 2_500


def test_missing_rate_and_class_balance_follow_their_knobs(tmp_path):
    table, _ = make(tmp_path, n_rows=20_000, missing_rate=0.1, positive_rate=0.3)

    missing = table[list(generate.NUMERIC + generate.CATEGORICAL)].isna().mean()
    assert missing.between(0.08, 0.12).all()
    assert table[generate.TARGET].mean() == pytest.approx(0.3, abs=0.02)
    assert table[generate.ORACLE].notna().all()


def test_related_columns_are_correlated(tmp_path):
    table, _ = make(tmp_path, n_rows=20_000)

    correlation = table[["age", "employment_years", "income", "savings"]].corr()
    assert correlation.loc["age", "employment_years"] > 0.4
    assert correlation.loc["income", "savings"] > 0.3


def test_default_difficulty_puts_bayes_accuracy_near_095(tmp_path):
    table, card = make(tmp_path, n_rows=50_000)

    p = table[generate.ORACLE].to_numpy()
    assert card["bayes_accuracy"] == pytest.approx(np.maximum(p, 1 - p).mean())
    assert 0.94 <= card["bayes_accuracy"] <= 0.96


def test_values_stay_in_their_documented_ranges(tmp_path):
    table, _ = make(tmp_path, n_rows=20_000)

    for name, (low, high) in generate.RANGES.items():
        values = table[name].dropna()
        assert low is None or values.min() >= low, name
        assert high is None or values.max() <= high, name


@pytest.mark.parametrize(
    ("field", "value"),
    [("n_rows", 0), ("positive_rate", 1.0), ("missing_rate", 0.9), ("signal", 0)],
)
def test_bad_parameters_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"{field}={value!r}"):
        generate.GeneratorConfig(**{field: value})


def test_a_failure_midway_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def failing_chunk(*args):
        if calls:
            raise RuntimeError("disk full")
        calls.append(1)
        return original(*args)

    original = generate.generate_chunk
    monkeypatch.setattr(generate, "generate_chunk", failing_chunk)
    with pytest.raises(RuntimeError, match="disk full"):
        make(tmp_path, n_rows=2_000, chunk_rows=1_000)

    assert list((tmp_path / "data").iterdir()) == []


def test_command_line_reports_bad_option_in_one_line(capsys, tmp_path):
    status = generate.main([str(tmp_path / "x"), "--rows", "0"])

    assert status == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "n_rows=0" in error
