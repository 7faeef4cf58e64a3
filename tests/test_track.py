"""MLflow tracking against the local SQLite store and a real `mlflow server`."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from mlflow.tracking import MlflowClient

from xgbflow import dataset, track


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real tracking server on loopback, serving artifacts over HTTP."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    env = os.environ | {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    log = root / "server.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"mlflow server did not start: {log.read_text()}")
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)


def _track(trained, tracking_uri, evaluation=None):
    return track.track_run(
        params=trained.model.params.to_dict(),
        card=dataset.read_card(str(trained.dataset_dir)),
        validation_report={"passed": True, "checks": []},
        evaluation=evaluation or trained.evaluation,
        history=trained.model.history,
        pipeline=trained.model.pipeline,
        onnx_dir=trained.model_dir,
        metadata=trained.metadata,
        tracking_uri=tracking_uri,
        registered_model_name="xgbflow-test",
    )


def _assert_complete_run(result, trained):
    client = MlflowClient(result["tracking_uri"])
    run = client.get_run(result["run_id"])

    assert run.data.params["train.max_depth"] == str(trained.model.params.max_depth)
    assert run.data.params["data.rows"] == str(len(trained.table))
    assert run.data.metrics["test_accuracy"] == pytest.approx(
        trained.evaluation["metrics"]["accuracy"]
    )
    assert "test_bayes_accuracy" in run.data.metrics
    history = client.get_metric_history(run.info.run_id, "validation_logloss")
    assert len(history) == len(trained.model.history["validation"]["logloss"])
    reports = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {
        "report/confusion_matrix.png",
        "report/roc_curve.png",
        "report/learning_curves.png",
        "report/feature_importance.png",
        "report/data_card.json",
    } <= reports
    directory = {
        a.path for a in client.list_artifacts(run.info.run_id, "model-directory")
    }
    assert {"model-directory/model.onnx", "model-directory/metadata.json"} <= directory
    return client


def test_local_sqlite_store(trained, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"

    result = _track(trained, uri)

    client = _assert_complete_run(result, trained)
    assert result["registered_model"] == {"name": "xgbflow-test", "version": 1}
    assert client.get_registered_model("xgbflow-test").name == "xgbflow-test"
    assert (tmp_path / "artifacts").is_dir()


def test_real_tracking_server(trained, mlflow_server):
    result = _track(trained, mlflow_server)

    client = _assert_complete_run(result, trained)
    versions = client.search_model_versions("name='xgbflow-test'")
    assert [v.run_id for v in versions] == [result["run_id"]]


def test_failed_gate_is_tracked_but_not_registered(trained, tmp_path):
    failing = trained.evaluation | {
        "gate": trained.evaluation["gate"] | {"threshold": 0.999, "passed": False}
    }

    result = _track(trained, f"sqlite:///{tmp_path / 'mlflow.db'}", failing)

    client = MlflowClient(result["tracking_uri"])
    assert result["registered_model"] is None
    assert client.get_run(result["run_id"]).data.tags["quality_gate"] == "failed"
    assert client.search_registered_models() == []
