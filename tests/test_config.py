import pytest

from xgbflow.config import TrainParams, coerce, resolve_tracking_uri
from xgbflow.errors import ConfigError


@pytest.mark.parametrize(
    ("value", "expected"), [("6", 6), (6.0, 6), ("6.0", 6), (6, 6), ("  7 ", 7)]
)
def test_integer_parameters_accept_integral_values(value, expected):
    params = TrainParams.from_mapping({"max_depth": value})

    assert params.max_depth == expected
    assert isinstance(params.max_depth, int)


@pytest.mark.parametrize("value", [3.5, "3.5", "six", None, True, "nan", "inf"])
def test_integer_parameters_reject_other_values(value):
    with pytest.raises(ConfigError, match="max_depth"):
        TrainParams.from_mapping({"max_depth": value})


def test_fractional_integer_message_names_field_value_and_expectation():
    with pytest.raises(ConfigError) as caught:
        coerce("n_estimators", 3.5, "int")

    assert str(caught.value) == (
        "n_estimators=3.5 has a fractional part; expected an integer"
    )


def test_float_parameters_accept_strings():
    assert TrainParams.from_mapping({"learning_rate": "0.05"}).learning_rate == 0.05


@pytest.mark.parametrize(
    ("name", "value"),
    [("max_depth", 0), ("learning_rate", 2.0), ("subsample", 0.0), ("cv_folds", 1)],
)
def test_out_of_range_values_are_rejected(name, value):
    with pytest.raises(ConfigError, match=name):
        TrainParams.from_mapping({name: value})


def test_unknown_parameter_is_named():
    with pytest.raises(ConfigError, match="max_dept"):
        TrainParams.from_mapping({"max_dept": 4})


def test_katib_search_space_names_are_fields():
    names = set(TrainParams().to_dict())

    assert {
        "max_depth",
        "learning_rate",
        "n_estimators",
        "min_child_weight",
        "subsample",
    } <= names


def test_tracking_uri_resolution(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path}/mlruns/mlflow.db"

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert resolve_tracking_uri() == "http://127.0.0.1:5000"
    assert resolve_tracking_uri("sqlite:///x.db") == "sqlite:///x.db"
