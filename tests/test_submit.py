"""`xgbflow submit` against a small fake of the KFP v2beta1 REST API on 127.0.0.1.

The real kfp.Client does the talking; the fake implements only the three calls a
submission makes (find experiment, create experiment, create run), checks the bearer
token on each, and records what it was sent.
"""

# No `from __future__ import annotations`: KFP reads the component's annotations as
# real types to compile it.
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from xgbflow import submit

TOKEN = "projected-token-for-pipelines-audience"


class FakeKfp(ThreadingHTTPServer):
    """Experiments and runs held in memory, keyed by namespace and display name."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeKfpHandler)
        self.experiments: list[dict] = []
        self.runs: list[dict] = []
        self.rejected = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FakeKfpHandler(BaseHTTPRequestHandler):
    server: FakeKfp

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read what the server recorded, not its access log."""

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self.server.rejected += 1
        self._reply(401, {"error": "invalid token", "code": 16})
        return False

    def do_GET(self) -> None:
        if not self._authorised():
            return
        url = urlparse(self.path)
        if url.path != "/apis/v2beta1/experiments":
            self._reply(404, {"error": f"no route {url.path}"})
            return
        query = parse_qs(url.query)
        predicate = json.loads(query["filter"][0])["predicates"][0]
        namespace = query.get("namespace", [""])[0]
        found = [
            e
            for e in self.server.experiments
            if e["display_name"]
            == predicate[
                "string_value" if "string_value" in predicate else "stringValue"
            ]
            and e["namespace"] == namespace
        ]
        self._reply(
            200, {"experiments": found, "total_size": len(found)} if found else {}
        )

    def do_POST(self) -> None:
        if not self._authorised():
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/apis/v2beta1/experiments":
            experiment = {
                **body,
                "experiment_id": f"exp-{len(self.server.experiments) + 1}",
            }
            self.server.experiments.append(experiment)
            self._reply(200, experiment)
        elif self.path == "/apis/v2beta1/runs":
            run = {
                **body,
                "run_id": f"run-{len(self.server.runs) + 1}",
                "state": "PENDING",
            }
            self.server.runs.append(run)
            self._reply(200, run)
        else:
            self._reply(404, {"error": f"no route {self.path}"})


@pytest.fixture
def kfp_api() -> Iterator[FakeKfp]:
    server = FakeKfp()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def pipeline_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real compiled pipeline with a few of the contract's parameters."""
    from kfp import compiler, dsl

    @dsl.component(base_image="python:3.11-slim")
    def echo(n_rows: int, learning_rate: float, data_uri: str) -> str:
        return f"{n_rows} {learning_rate} {data_uri}"

    @dsl.pipeline(name="xgbflow-training")
    def training(n_rows: int = 100000, learning_rate: float = 0.1, data_uri: str = ""):
        echo(n_rows=n_rows, learning_rate=learning_rate, data_uri=data_uri)

    path = tmp_path_factory.mktemp("pipeline") / "training_pipeline.yaml"
    compiler.Compiler().compile(training, str(path))
    return path


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def write_params(tmp_path: Path, params: dict) -> Path:
    path = tmp_path / "pipeline-params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def run_submit(api: FakeKfp, pipeline: Path, params: Path, token: Path) -> int:
    return submit.main(
        [
            f"--host={api.url}",
            "--namespace=xgbflow-dev",
            f"--pipeline={pipeline}",
            f"--params={params}",
            f"--token-path={token}",
            "--experiment=scheduled-training",
            "--run-name=nightly",
        ]
    )


def test_submit_creates_experiment_and_run_with_parameters(
    kfp_api: FakeKfp, pipeline_file: Path, token_file: Path, tmp_path: Path
) -> None:
    params = write_params(tmp_path, {"n_rows": 2000, "learning_rate": 0.05})

    status = run_submit(kfp_api, pipeline_file, params, token_file)

    assert status == 0
    assert [(e["display_name"], e["namespace"]) for e in kfp_api.experiments] == [
        ("scheduled-training", "xgbflow-dev")
    ]
    (run,) = kfp_api.runs
    assert run["display_name"] == "nightly"
    assert run["experiment_id"] == "exp-1"
    assert run["runtime_config"]["parameters"] == {
        "n_rows": 2000,
        "learning_rate": 0.05,
    }
    compiled = yaml.safe_load(pipeline_file.read_text())
    assert (
        run["pipeline_spec"]["pipelineInfo"]["name"] == compiled["pipelineInfo"]["name"]
    )
    assert run["pipeline_spec"]["root"] == compiled["root"]


def test_second_submission_reuses_the_experiment(
    kfp_api: FakeKfp, pipeline_file: Path, token_file: Path, tmp_path: Path
) -> None:
    params = write_params(tmp_path, {})

    statuses = [
        run_submit(kfp_api, pipeline_file, params, token_file) for _ in range(2)
    ]

    assert statuses == [0, 0]
    assert len(kfp_api.experiments) == 1
    assert [r["experiment_id"] for r in kfp_api.runs] == ["exp-1", "exp-1"]


def test_wrong_token_is_reported_and_nothing_is_created(
    kfp_api: FakeKfp,
    pipeline_file: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = tmp_path / "stale-token"
    token.write_text("someone-else")

    status = run_submit(kfp_api, pipeline_file, write_params(tmp_path, {}), token)

    assert status == 1
    assert kfp_api.rejected >= 1
    assert not kfp_api.runs
    assert "HTTP 401" in caplog.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_row": 10}, "'n_row' is not an input of the pipeline"),
        ({"n_rows": "many"}, "'n_rows' = 'many': expected a NUMBER_INTEGER"),
        ({"n_rows": True}, "'n_rows' = True: expected a NUMBER_INTEGER"),
        ({"data_uri": 3}, "'data_uri' = 3: expected a STRING"),
    ],
)
def test_bad_parameters_are_refused_before_any_request(
    kfp_api: FakeKfp,
    pipeline_file: Path,
    token_file: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    params: dict,
    message: str,
) -> None:
    status = run_submit(
        kfp_api, pipeline_file, write_params(tmp_path, params), token_file
    )

    assert status == 1
    assert message in caplog.text
    assert not kfp_api.experiments
    assert not kfp_api.runs


def test_missing_token_names_the_audience(
    kfp_api: FakeKfp,
    pipeline_file: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    status = run_submit(
        kfp_api, pipeline_file, write_params(tmp_path, {}), tmp_path / "none"
    )

    assert status == 1
    assert "audience pipelines.kubeflow.org" in caplog.text
