"""The notebooks run headless from a clean state and show what they promise.

Small data and few boosting rounds keep each run to seconds; the assertions read what
the notebooks wrote (dataset, validation report, splits, model directory, MLflow run)
and count the figures they drew.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from notebook_tools import image_count, printed

from xgbflow import steps

pytestmark = pytest.mark.slow

LOADING = "01-data-loading.ipynb"
PREPROCESSING = "02-data-preprocessing.ipynb"
DEVELOPMENT = "03-model-development.ipynb"
SMALL_DATA = {"N_ROWS": 3000, "SEED": 11}
SMALL_MODEL = {"N_ESTIMATORS": 150, "LEARNING_RATE": 0.2, "CV_FOLDS": 2}
EXPERIMENT = "notebook-tests"


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def tracking(tmp_path: Path) -> dict[str, str]:
    """Parameters sending notebook 03's MLflow run to a store of the test's own."""
    return {
        "TRACKING_URI": f"sqlite:///{tmp_path / 'tracking' / 'mlflow.db'}",
        "EXPERIMENT": EXPERIMENT,
    }


def assert_tracked(tracking_uri: str) -> None:
    """One run in the store, with sane test metrics, parity passed, model registered."""
    from mlflow.tracking import MlflowClient  # heavy: imported only when a test runs

    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    (run,) = client.search_runs([experiment.experiment_id])
    metrics = run.data.metrics
    assert 0.85 <= metrics["test_accuracy"] <= 1.0
    assert metrics["test_gap_to_bayes"] < 0.1
    assert 0.85 <= metrics["cv_accuracy_mean"] <= 1.0
    assert run.data.tags["onnx_parity"] == "passed"
    assert run.data.tags["quality_gate"] == "passed"
    versions = client.search_model_versions("name='xgbflow-notebook-classifier'")
    assert [version.run_id for version in versions] == [run.info.run_id]


def assert_model_exported(output: Path) -> None:
    metadata = read_json(output / "model" / "metadata.json")
    assert metadata["parity"]["passed"]
    assert metadata["parity"]["labels_differing"] == 0
    assert (output / "model" / "model.onnx").stat().st_size > 0


def test_notebooks_run_in_order_each_reading_what_the_last_saved(
    run_notebook, tmp_path
):
    output = tmp_path / "output"
    where = {"OUTPUT_DIR": str(output)}

    loading = run_notebook(LOADING, tmp_path, **where, **SMALL_DATA)
    card = read_json(output / "dataset" / "data_card.json")
    report = read_json(output / "validation_report.json")
    assert (card["source"], card["rows"]) == ("synthetic", 3000)
    assert report["passed"], report["failures"]
    assert image_count(loading) == 5

    preprocessing = run_notebook(PREPROCESSING, tmp_path, **where, **SMALL_DATA)
    assert "no dataset" not in printed(preprocessing)
    splits, _ = steps.read_splits(str(output / "splits"))
    assert sum(len(rows) for _, rows in splits.items()) == 3000
    train_features = pd.read_parquet(output / "features" / "train.parquet")
    assert len(train_features) == len(splits.train)
    assert "derived__debt_to_income" in train_features.columns
    assert image_count(preprocessing) == 2

    development = run_notebook(
        DEVELOPMENT,
        tmp_path,
        **where,
        **SMALL_DATA,
        **SMALL_MODEL,
        **tracking(tmp_path),
    )
    assert "no splits" not in printed(development)
    assert read_json(output / "dataset" / "data_card.json") == card
    assert_model_exported(output)
    assert_tracked(tracking(tmp_path)["TRACKING_URI"])
    assert image_count(development) == 6


def test_model_development_notebook_runs_alone_from_nothing(run_notebook, tmp_path):
    output = tmp_path / "output"

    notebook = run_notebook(
        DEVELOPMENT,
        tmp_path,
        OUTPUT_DIR=str(output),
        **SMALL_DATA,
        **SMALL_MODEL,
        **tracking(tmp_path),
    )

    assert "no dataset" in printed(notebook)
    assert read_json(output / "validation_report.json")["passed"]
    assert_model_exported(output)
    assert_tracked(tracking(tmp_path)["TRACKING_URI"])


def test_preprocessing_notebook_runs_alone_from_nothing(run_notebook, tmp_path):
    output = tmp_path / "output"

    notebook = run_notebook(
        PREPROCESSING, tmp_path, OUTPUT_DIR=str(output), **SMALL_DATA
    )

    assert "no dataset" in printed(notebook)
    splits, _ = steps.read_splits(str(output / "splits"))
    assert sum(len(rows) for _, rows in splits.items()) == 3000
    assert (output / "preprocessor.joblib").is_file()


def test_data_loading_notebook_loads_a_given_file(run_notebook, tmp_path):
    output = tmp_path / "output"

    notebook = run_notebook(
        LOADING, tmp_path, OUTPUT_DIR=str(output), DATA_FILE="breast-cancer"
    )

    card = read_json(output / "dataset" / "data_card.json")
    assert (card["source"], card["rows"]) == ("file", 569)
    assert len(card["schema"]["numeric"]) == 30
    assert card["schema"]["categorical"] == []
    assert read_json(output / "validation_report.json")["passed"]
    # No category chart and no true-probability panel: four figures, not five.
    assert image_count(notebook) == 4
    assert "no categorical columns" in printed(notebook)
