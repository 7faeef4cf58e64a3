import json
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from xgbflow import dataset, export, train
from xgbflow.errors import ParityError


@pytest.fixture(scope="module")
def session(model_dir):
    return ort.InferenceSession(
        str(model_dir / export.MODEL_FILE), providers=["CPUExecutionProvider"]
    )


def test_graph_takes_raw_columns_and_returns_plain_tensors(trained, session):
    inputs = {i.name: i.type for i in session.get_inputs()}
    outputs = {o.name: o.type for o in session.get_outputs()}

    assert list(inputs) == list(trained.schema.features)
    assert {inputs[name] for name in trained.schema.numeric} == {"tensor(float)"}
    assert {inputs[name] for name in trained.schema.categorical} == {"tensor(string)"}
    assert outputs == {"label": "tensor(int64)", "probabilities": "tensor(float)"}


def test_opsets_are_pinned(model_dir):
    model = onnx.load(str(model_dir / export.MODEL_FILE))

    opsets = {entry.domain: entry.version for entry in model.opset_import}
    assert opsets[""] == export.OPSETS[""]
    assert opsets["ai.onnx.ml"] == export.OPSETS["ai.onnx.ml"]


def test_parity_recorded_in_metadata(trained):
    parity = trained.metadata["parity"]

    assert parity["passed"]
    assert parity["labels_differing"] == 0
    assert parity["max_probability_difference"] <= export.PARITY_TOLERANCE
    assert parity["rows"] == len(trained.splits.test)


def test_missing_and_unseen_values_score_as_in_the_pipeline(trained, session):
    rows = trained.splits.test.head(50).copy()
    rows.loc[rows.index[:10], "income"] = np.nan
    rows.loc[rows.index[10:20], "employment_type"] = None
    rows.loc[rows.index[20:30], "home_ownership"] = "houseboat"
    rows.loc[rows.index[30:40], "debt"] = 0.0
    frame = dataset.to_model_frame(rows, trained.schema)

    labels, probabilities = session.run(None, export.onnx_inputs(frame, trained.schema))

    expected = trained.model.pipeline.predict_proba(frame)
    np.testing.assert_array_equal(labels, expected.argmax(axis=1))
    np.testing.assert_allclose(probabilities, expected, atol=export.PARITY_TOLERANCE)


def test_metadata_describes_inputs_outputs_and_reference(trained, model_dir):
    metadata = json.loads((model_dir / export.METADATA_FILE).read_text())

    assert [i["name"] for i in metadata["inputs"]] == list(trained.schema.features)
    assert {o["name"] for o in metadata["outputs"]} == {"label", "probabilities"}
    assert metadata["metrics"] == trained.evaluation["metrics"]
    income = metadata["reference"]["features"]["income"]
    assert sum(income["bin_fractions"]) == pytest.approx(1.0)
    assert len(income["bin_edges"]) == len(income["bin_fractions"]) + 1
    region = metadata["reference"]["features"]["region"]["categories"]
    assert sum(region.values()) == pytest.approx(1.0)
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{12}", metadata["model_version"])


def test_failing_parity_publishes_nothing(trained, tmp_path):
    target = tmp_path / "model"

    with pytest.raises(ParityError, match="expected <= -1"):
        export.export_model(
            trained.model.pipeline,
            trained.schema,
            train=trained.splits.train,
            test=trained.splits.test,
            evaluation=trained.evaluation,
            output_dir=target,
            tolerance=-1.0,
        )
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_parity_catches_a_graph_from_another_model(trained):
    other = train.train_model(
        trained.model.pipeline.named_steps["preprocess"],
        trained.splits.train,
        trained.splits.validation,
        trained.schema,
        trained.model.params.__class__(n_estimators=5),
    )
    graph = export.to_onnx(other.pipeline, trained.schema)

    with pytest.raises(ParityError, match="labels differ"):
        export.check_parity(
            graph, trained.model.pipeline, trained.splits.test, trained.schema
        )
