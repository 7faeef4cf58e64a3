"""The real server over HTTP: answers, parity, errors, metrics and startup."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xgbflow.export import PARITY_TOLERANCE

from .support import (
    MODEL_NAME,
    free_port,
    json_rows,
    serve_command,
    start_server,
    stop_server,
    v2_body,
)

pytestmark = pytest.mark.slow

V1 = f"/v1/models/{MODEL_NAME}:predict"
V2 = f"/v2/models/{MODEL_NAME}/infer"


def pipeline_answers(trained, frame) -> tuple[np.ndarray, np.ndarray]:
    pipeline = trained.model.pipeline
    return pipeline.predict(frame), pipeline.predict_proba(frame)


def test_v1_named_rows_match_the_training_pipeline(server, trained, sample_rows):
    response = server.post_json(V1, json.dumps({"instances": json_rows(sample_rows)}))

    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    labels, probabilities = pipeline_answers(trained, sample_rows)
    assert [row["label"] for row in predictions] == labels.tolist()
    served = np.array([row["probabilities"] for row in predictions])
    np.testing.assert_allclose(served, probabilities, atol=PARITY_TOLERANCE)


def test_v1_rows_in_schema_order_answer_as_named_rows(server, trained, sample_rows):
    rows = json_rows(sample_rows.head(20))
    ordered = [[row[name] for name in trained.schema.features] for row in rows]

    named = server.post_json(V1, json.dumps({"instances": rows})).json()
    listed = server.post_json(V1, json.dumps({"instances": ordered})).json()

    assert listed == named


@pytest.mark.parametrize("nested", [False, True])
def test_v2_matches_the_training_pipeline(server, trained, sample_rows, nested):
    body = v2_body(json_rows(sample_rows), trained.schema, nested=nested)
    response = server.post_json(V2, json.dumps(body))

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model_name"] == MODEL_NAME
    assert answer["model_version"] == trained.metadata["model_version"]
    assert answer["id"] == "request-1"
    outputs = {output["name"]: output for output in answer["outputs"]}
    labels, probabilities = pipeline_answers(trained, sample_rows)
    assert outputs["label"]["shape"] == [len(sample_rows)]
    assert outputs["label"]["datatype"] == "INT64"
    assert outputs["label"]["data"] == labels.tolist()
    assert outputs["probabilities"]["shape"] == [len(sample_rows), 2]
    served = np.array(outputs["probabilities"]["data"]).reshape(-1, 2)
    np.testing.assert_allclose(served, probabilities, atol=PARITY_TOLERANCE)


def test_null_and_nan_score_exactly_as_missing_values_in_training(
    server, trained, sample_rows
):
    schema = trained.schema
    frame = sample_rows.head(1).copy()
    numeric, category = schema.numeric[1], schema.categorical[0]
    frame[numeric] = np.float32("nan")
    frame[category] = ""
    row = json_rows(frame)[0]
    assert row[numeric] is None
    assert row[category] is None
    nan_literal = json.dumps({"instances": [row]}).replace(
        f'"{numeric}": null', f'"{numeric}": NaN'
    )

    with_null = server.post_json(V1, json.dumps({"instances": [row]})).json()
    with_nan = server.post_json(V1, nan_literal).json()

    _, probabilities = pipeline_answers(trained, frame)
    assert with_nan == with_null
    np.testing.assert_allclose(
        with_null["predictions"][0]["probabilities"],
        probabilities[0],
        atol=PARITY_TOLERANCE,
    )


def test_model_metadata_lists_the_real_inputs_and_outputs(server, trained):
    metadata = server.client.get(f"/v2/models/{MODEL_NAME}").json()

    schema = trained.schema
    assert [item["name"] for item in metadata["inputs"]] == list(schema.features)
    datatypes = {item["name"]: item["datatype"] for item in metadata["inputs"]}
    assert {datatypes[name] for name in schema.numeric} == {"FP32"}
    assert {datatypes[name] for name in schema.categorical} == {"BYTES"}
    assert metadata["outputs"] == [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
    ]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/health/live", {"live": True}),
        ("/v2/health/ready", {"ready": True}),
        (f"/v2/models/{MODEL_NAME}/ready", {"name": MODEL_NAME, "ready": True}),
        (f"/v1/models/{MODEL_NAME}", {"name": MODEL_NAME, "ready": True}),
    ],
)
def test_health_endpoints_report_a_loaded_model(server, path, expected):
    response = server.client.get(path)

    assert response.status_code == 200
    assert response.json() == expected


def test_readiness_turns_false_when_the_model_is_unloaded(model_dir, tmp_path):
    running = start_server(model_dir, tmp_path / "server.log")
    try:
        unload = f"/v2/repository/models/{MODEL_NAME}/unload"
        assert running.client.post(unload).status_code == 200

        assert running.client.get("/v2/health/ready").status_code == 503
        assert running.client.get("/v2/health/ready").json() == {"ready": False}
        predict = running.post_json(V1, "{}")
        assert predict.status_code == 404
        assert "is not served here" in predict.json()["error"]
    finally:
        stop_server(running)


def _valid_v1(trained, sample_rows) -> dict:
    return {"instances": json_rows(sample_rows.head(2))}


BAD_REQUESTS = {
    # name: (path, body or callable(valid body) -> body, headers, status, fragment)
    "malformed JSON": (V1, b'{"instances": [', None, 400, "not valid JSON"),
    "empty body": (V1, b"", None, 400, "empty"),
    "empty batch": (V1, {"instances": []}, None, 400, "'instances' is an empty list"),
    "missing column": (
        V1,
        lambda b: b["instances"][0].pop("income"),
        None,
        400,
        "missing column(s) ['income']",
    ),
    "misspelled column": (
        V1,
        lambda b: b["instances"][1].update(incme=b["instances"][1].pop("income")),
        None,
        400,
        "did you mean 'income'",
    ),
    "string for a number": (
        V1,
        lambda b: b["instances"][0].update(age="forty"),
        None,
        400,
        "instances[0]['age'] is 'forty'",
    ),
    "wrong V2 datatype": (
        V2,
        lambda b: b["inputs"][0].update(datatype="INT32"),
        None,
        400,
        "inputs[0] ('age').datatype",
    ),
    "V2 shape not matching data": (
        V2,
        lambda b: b["inputs"][3].update(shape=[5, 1]),
        None,
        400,
        "shape says 5 rows but data holds 2",
    ),
    "missing content type": (V1, None, {"content-type": ""}, 415, "Content-Type"),
    "wrong content type": (
        V1,
        None,
        {"content-type": "text/plain"},
        415,
        "Content-Type header is 'text/plain'",
    ),
    "unknown model": (
        "/v1/models/no-such-model:predict",
        None,
        None,
        404,
        "'no-such-model' is not served here",
    ),
    "unknown model V2": (
        "/v2/models/no-such-model/infer",
        None,
        None,
        404,
        "not served here",
    ),
    "unknown model version": (
        f"/v2/models/{MODEL_NAME}/versions/0/infer",
        None,
        None,
        404,
        "has no version '0'",
    ),
}


@pytest.mark.parametrize(
    ("path", "change", "headers", "status", "fragment"),
    BAD_REQUESTS.values(),
    ids=list(BAD_REQUESTS),
)
def test_bad_requests_get_a_4xx_naming_the_problem(
    server, trained, sample_rows, path, change, headers, status, fragment
):
    rows = json_rows(sample_rows.head(2))
    body = (
        v2_body(rows, trained.schema)
        if path.endswith("/infer")
        else {"instances": rows}
    )
    if callable(change):
        change(body)
    elif change is not None:
        body = change
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    request_headers = {"content-type": "application/json", **(headers or {})}
    if request_headers["content-type"] == "":
        del request_headers["content-type"]

    response = server.client.post(path, content=content, headers=request_headers)

    assert response.status_code == status, response.text
    assert fragment in response.json()["error"]


def test_body_over_the_limit_gets_413(model_dir, tmp_path):
    running = start_server(model_dir, tmp_path / "server.log", "--max_request_bytes=64")
    try:
        declared = running.post_json(V1, json.dumps({"instances": [[0] * 40]}))
        streamed = running.client.post(
            V1,
            content=iter([b'{"instances": ', b"[" + b"1," * 60 + b"1]}"]),
            headers={"content-type": "application/json"},
        )
    finally:
        stop_server(running)

    for response in (declared, streamed):
        assert response.status_code == 413
        assert "expected at most 64" in response.json()["error"]


def test_metrics_count_requests_predictions_and_drift(server, trained, sample_rows):
    rows = json_rows(sample_rows)
    answer = server.post_json(V1, json.dumps({"instances": rows})).json()
    server.post_json(V1, b"{")

    text = server.client.get("/metrics").text

    version = trained.metadata["model_version"]
    labels = f'model_name="{MODEL_NAME}",model_version="{version}"'
    assert _value(text, "xgbflow_requests_total", labels, 'protocol="v1",status="200"')
    assert _value(text, "xgbflow_requests_total", labels, 'protocol="v1",status="400"')
    assert _value(text, "xgbflow_request_duration_seconds_count", labels, "") > 0
    positives = sum(row["label"] for row in answer["predictions"])
    assert _value(text, "xgbflow_predictions_total", labels, 'class="1"') >= positives
    assert _value(text, "xgbflow_prediction_probability_count", labels, "") >= len(rows)
    for name in trained.schema.features:
        feature = f'feature="{name}"'
        psi = _value(text, "xgbflow_feature_drift_psi", labels, feature)
        missing = _value(text, "xgbflow_feature_missing_ratio", labels, feature)
        assert math.isnan(psi) or psi >= 0
        assert 0 <= missing <= 1
    assert not math.isnan(_value(text, "xgbflow_prediction_drift_psi", labels, ""))


def _value(text: str, metric: str, model_labels: str, extra: str) -> float:
    """The sample of `metric` whose labels include all of the given ones."""
    wanted = [part for part in (model_labels + "," + extra).split(",") if part]
    for line in text.splitlines():
        match = re.match(rf"^{metric}\{{(.*)\}} (\S+)$", line)
        if match and all(part in match.group(1).split(",") for part in wanted):
            return float(match.group(2))
    raise AssertionError(f"no {metric} with {wanted} in /metrics")


def _broken_graph(directory, model_dir):
    (directory / "metadata.json").write_text((model_dir / "metadata.json").read_text())
    (directory / "model.onnx").write_bytes(b"\x08 not an onnx graph")


def _no_graph(directory, model_dir):
    (directory / "metadata.json").write_text((model_dir / "metadata.json").read_text())


BROKEN_MODELS = {
    "empty directory": (lambda d, m: None, "metadata.json does not exist"),
    "metadata without fields": (
        lambda d, m: (d / "metadata.json").write_text("{}"),
        "has no 'model_version' field",
    ),
    "metadata not JSON": (
        lambda d, m: (d / "metadata.json").write_text("{not json"),
        "is not readable JSON",
    ),
    "no graph": (_no_graph, "model.onnx does not exist"),
    "corrupt graph": (_broken_graph, "cannot be loaded by onnxruntime"),
}


@pytest.mark.parametrize(
    ("setup", "fragment"), BROKEN_MODELS.values(), ids=list(BROKEN_MODELS)
)
def test_missing_or_corrupt_model_stops_the_server_with_a_clear_message(
    tmp_path, model_dir, setup, fragment
):
    broken = tmp_path / "model"
    broken.mkdir()
    setup(broken, model_dir)

    completed = subprocess.run(
        serve_command(broken, free_port()), capture_output=True, text=True, timeout=60
    )

    assert completed.returncode == 1
    message = completed.stderr.strip().splitlines()[-1]
    assert message.startswith("xgbflow serve: ")
    assert fragment in message


fuzz_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=12,
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    path=st.sampled_from([V1, V2]),
    body=fuzz_value.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=80),
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/plain", None]
    ),
)
def test_fuzz_the_live_server_never_answers_5xx(server, path, body, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = server.client.post(path, content=body, headers=headers)

    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert response.json()["error"]


def test_option_parsing_does_not_import_kserve():
    script = (
        "import sys; from xgbflow.serve import server; "
        "server.build_parser().parse_args(['--http_port', '9000']); "
        "print('kserve' in sys.modules)"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert completed.stdout.strip() == "False", completed.stderr


def test_an_invalid_port_is_refused_before_loading(tmp_path):
    command = [*serve_command(tmp_path, 8080), "--http_port=99999"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert completed.returncode == 2
    assert "not a TCP port" in completed.stderr
