"""The KFP pipeline: its compiled YAML is current, and it really runs locally."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from xgbflow.config import TrainParams

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "pipelines" / "training_pipeline.py"
COMPILED = ROOT / "pipelines" / "training_pipeline.yaml"


@pytest.fixture(scope="module")
def pipeline_module():
    spec = importlib.util.spec_from_file_location("training_pipeline", SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_yaml_matches_its_source(pipeline_module, tmp_path):
    fresh = pipeline_module.compile_pipeline(tmp_path / "pipeline.yaml")

    assert yaml.safe_load(fresh.read_text()) == yaml.safe_load(COMPILED.read_text()), (
        "pipelines/training_pipeline.yaml is stale: run "
        "`.venv/bin/python pipelines/training_pipeline.py` and commit the result"
    )


def test_pipeline_parameters_cover_the_search_space():
    spec = yaml.safe_load(COMPILED.read_text())
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    searched = {
        "max_depth",
        "learning_rate",
        "n_estimators",
        "min_child_weight",
        "subsample",
    }

    assert searched <= set(parameters)
    defaults = TrainParams()
    for name in searched:
        assert parameters[name]["defaultValue"] == getattr(defaults, name), name


def test_components_use_typed_artifacts_and_retries():
    spec = yaml.safe_load(COMPILED.read_text())
    components = spec["components"]
    evaluate = components["comp-evaluate-model"]["outputDefinitions"]["artifacts"]
    tasks = spec["root"]["dag"]["tasks"]

    assert evaluate["classification"]["artifactType"]["schemaTitle"] == (
        "system.ClassificationMetrics"
    )
    assert evaluate["metrics"]["artifactType"]["schemaTitle"] == "system.Metrics"
    assert tasks["track-run"]["retryPolicy"]["maxRetryCount"] == 3
    images = {
        executor["container"]["image"]
        for executor in spec["deploymentSpec"]["executors"].values()
    }
    assert images == {
        f"ghcr.io/xgbflow/{name}:0.1.0" for name in ("data", "train", "export", "track")
    }


def run_cli(*args, cwd=ROOT, timeout=600):
    env = os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    return subprocess.run(
        [sys.executable, "-m", "xgbflow.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rows", "0"], "--rows 0 is not a positive number of rows"),
        (["--max-depth", "3.5"], "max_depth='3.5' has a fractional part"),
        (["--data", "no/such.csv"], "--data 'no/such.csv' is not a file"),
        (["--learning-rate", "fast"], "learning_rate='fast' is not a number"),
        (["--colour", "blue"], "unrecognized arguments: --colour blue"),
        (["--pipeline", "nowhere.py"], "--pipeline 'nowhere.py' does not exist"),
    ],
)
def test_bad_options_get_one_line_and_no_traceback(tmp_path, args, message):
    result = run_cli("run", "--runs-dir", str(tmp_path), *args, timeout=120)

    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_pipeline_runs_end_to_end_with_the_local_runner(tmp_path):
    store = tmp_path / "mlflow.db"
    result = run_cli(
        "run",
        "--rows",
        "3000",
        "--n-estimators",
        "150",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--tracking-uri",
        f"sqlite:///{store}",
        "--publish",
        str(tmp_path / "published"),
    )

    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.stdout
    assert "gate >= 0.90: passed" in summary
    assert "Bayes-optimal accuracy of the test split" in summary
    assert "labels differing 0" in summary
    model_dir = tmp_path / "runs" / "latest" / "model"
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["parity"]["passed"]
    assert str(model_dir.resolve().parent.parent.parent.name) in summary
    assert (tmp_path / "published" / "model.onnx").is_file()

    client = MlflowClient(f"sqlite:///{store}")
    (version,) = client.search_model_versions("name='xgbflow-classifier'")
    run = client.get_run(version.run_id)
    assert run.data.metrics["test_accuracy"] == pytest.approx(
        metadata["metrics"]["accuracy"]
    )
    assert f"MLflow run       {version.run_id}" in summary


@pytest.mark.slow
def test_a_failed_gate_fails_the_run_after_tracking_it(tmp_path):
    store = tmp_path / "mlflow.db"
    result = run_cli(
        "run",
        "--rows",
        "1500",
        "--n-estimators",
        "30",
        "--gate",
        "0.999",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--tracking-uri",
        f"sqlite:///{store}",
        "--publish",
        str(tmp_path / "published"),
    )

    assert result.returncode == 1
    assert "gate >= 1.00: FAILED" in result.stdout
    assert "the pipeline failed" in result.stderr
    assert not (tmp_path / "published").exists()
    client = MlflowClient(f"sqlite:///{store}")
    (run,) = client.search_runs(client.search_experiments()[0].experiment_id)
    assert run.data.tags["quality_gate"] == "failed"
    assert client.search_registered_models() == []
