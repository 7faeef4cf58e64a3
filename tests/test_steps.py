"""The pipeline's step functions chained by hand, as the components chain them."""

import json

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from xgbflow import dataset, steps
from xgbflow.errors import QualityGateError, ValidationError


def run_steps(tmp_path, **data):
    """Every step up to export, with artifacts under tmp_path; returns their paths."""
    paths = {
        "dataset": tmp_path / "dataset",
        "report": tmp_path / "validation.json",
        "splits": tmp_path / "splits",
        "preprocessor": tmp_path / "preprocessor.joblib",
        "model": tmp_path / "model.joblib",
        "history": tmp_path / "history.json",
        "evaluation": tmp_path / "evaluation.json",
        "onnx": tmp_path / "onnx",
    }
    p = {name: str(path) for name, path in paths.items()}
    steps.acquire_data(p["dataset"], **data)
    steps.validate_data(p["dataset"], p["report"])
    steps.preprocess_data(p["dataset"], p["report"], p["splits"], p["preprocessor"])
    steps.train_model(
        p["splits"], p["preprocessor"], p["model"], p["history"], {"n_estimators": "80"}
    )
    steps.evaluate_model(p["splits"], p["model"], p["evaluation"], accuracy_gate=0.9)
    steps.export_onnx(
        p["splits"], p["model"], p["evaluation"], p["onnx"], model_name="byo"
    )
    return paths


def test_a_real_table_runs_through_every_step(tmp_path):
    source = tmp_path / "breast_cancer.csv"
    load_breast_cancer(as_frame=True).frame.to_csv(source, index=False)

    paths = run_steps(tmp_path, data_uri=str(source), target="target")

    evaluation = json.loads(paths["evaluation"].read_text())
    assert evaluation["gate"]["passed"]
    assert evaluation["bayes_accuracy"] is None
    metadata = json.loads((paths["onnx"] / "metadata.json").read_text())
    assert metadata["parity"]["passed"]
    assert len(metadata["inputs"]) == 30
    published = steps.publish_model(
        str(paths["evaluation"]), str(paths["onnx"]), str(tmp_path / "published")
    )
    assert published == str(tmp_path / "published")
    assert (tmp_path / "published" / "model.onnx").is_file()


def test_failed_validation_writes_its_report_and_nothing_downstream(tmp_path):
    steps.acquire_data(str(tmp_path / "dataset"), n_rows=100)

    with pytest.raises(ValidationError, match="rule min_rows observed 100"):
        steps.validate_data(str(tmp_path / "dataset"), str(tmp_path / "report.json"))

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["passed"] is False
    with pytest.raises(ValidationError, match="did not pass validation"):
        steps.preprocess_data(
            str(tmp_path / "dataset"),
            str(tmp_path / "report.json"),
            str(tmp_path / "splits"),
            str(tmp_path / "preprocessor.joblib"),
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset", "report.json"]


def test_publishing_enforces_the_gate(tmp_path, model_dir, trained):
    evaluation = tmp_path / "evaluation.json"
    failing = trained.evaluation | {
        "gate": trained.evaluation["gate"] | {"threshold": 0.999, "passed": False}
    }
    evaluation.write_text(json.dumps(failing))

    with pytest.raises(QualityGateError, match=r"expected >= 0\.9990"):
        steps.publish_model(str(evaluation), str(model_dir), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_training_parameters_arrive_as_text(tmp_path, trained):
    history = tmp_path / "history.json"
    splits = tmp_path / "splits"
    steps.preprocess_data(
        str(trained.dataset_dir),
        str(_passed_report(tmp_path)),
        str(splits),
        str(tmp_path / "pre.joblib"),
    )

    steps.train_model(
        str(splits),
        str(tmp_path / "pre.joblib"),
        str(tmp_path / "model.joblib"),
        str(history),
        {"max_depth": "3", "n_estimators": 20.0, "learning_rate": "0.3"},
    )

    params = json.loads(history.read_text())["params"]
    assert params["max_depth"] == 3
    assert params["n_estimators"] == 20


def _passed_report(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"passed": True}))
    return path


def test_saved_preprocessing_reads_back_as_written(tmp_path, trained):
    schema, splits = trained.schema, trained.splits
    fitted = trained.model.pipeline.named_steps["preprocess"]

    steps.write_preprocessing(
        splits, schema, fitted, str(tmp_path / "splits"), str(tmp_path / "pre.joblib")
    )
    read, read_schema = steps.read_splits(str(tmp_path / "splits"))
    loaded = joblib.load(tmp_path / "pre.joblib")

    assert read_schema == schema
    for (name, written), (_, back) in zip(splits.items(), read.items(), strict=True):
        pd.testing.assert_frame_equal(
            back, written.reset_index(drop=True), obj=f"split {name}"
        )
    np.testing.assert_array_equal(
        loaded.transform(dataset.to_model_frame(read.test, schema)),
        fitted.transform(dataset.to_model_frame(splits.test, schema)),
    )
