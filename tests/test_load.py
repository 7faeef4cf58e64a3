import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from xgbflow import dataset, load
from xgbflow.errors import DataError


@pytest.fixture(scope="module")
def breast_cancer_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("byo") / "breast_cancer.csv"
    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    frame.to_csv(path, index=False)
    return path


def test_a_real_table_becomes_a_dataset(breast_cancer_csv, tmp_path):
    card = load.load_dataset(str(breast_cancer_csv), str(tmp_path / "ds"), "diagnosis")

    table, schema, _ = dataset.read_dataset(str(tmp_path / "ds"))
    assert card["rows"] == len(table) == 569
    assert len(schema.numeric) == 30
    assert schema.categorical == ()
    assert schema.classes == ("benign", "malignant")
    assert set(table["diagnosis"]) == {0, 1}
    assert (table["diagnosis"] == 1).sum() == 212  # malignant rows


def test_parquet_with_named_categorical_columns(tmp_path):
    source = tmp_path / "in.parquet"
    pd.DataFrame(
        {
            "x": [1.0, 2.0, None, 4.0],
            "colour": ["red", None, "blue", "red"],
            "y": [0, 1, 0, 1],
        }
    ).to_parquet(source)

    load.load_dataset(str(source), str(tmp_path / "ds"), "y", ["colour"])

    _, schema, card = dataset.read_dataset(str(tmp_path / "ds"))
    assert schema.categorical == ("colour",)
    assert card["statistics"]["colour"]["missing_ratio"] == 0.25


@pytest.mark.parametrize(
    ("frame", "target", "categorical", "message"),
    [
        ({"x": [1, 2], "y": [0, 1]}, "label", (), "target='label' is not a column"),
        ({"x": ["a", "b"], "y": [0, 1]}, "y", (), r"columns \['x'\] hold text"),
        ({"x": [1, 2, 3], "y": [0, 1, 2]}, "y", (), "has 3 distinct values"),
        ({"x": [1, 2], "y": [0, 1]}, "y", ("z",), r"categorical columns \['z'\]"),
        ({"x": [1, 2, 3], "y": [0, 1, None]}, "y", (), "1 missing values"),
    ],
)
def test_unusable_tables_are_refused_with_the_reason(
    tmp_path, frame, target, categorical, message
):
    source = tmp_path / "in.csv"
    pd.DataFrame(frame).to_csv(source, index=False)

    with pytest.raises(DataError, match=message):
        load.load_dataset(str(source), str(tmp_path / "ds"), target, categorical)
    assert not (tmp_path / "ds").exists()


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load.read_table(str(tmp_path / "absent.csv"))
    with pytest.raises(DataError, match="unsupported extension"):
        load.read_table(str(tmp_path / "data.xlsx"))
