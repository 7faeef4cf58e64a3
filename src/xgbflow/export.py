"""Export the trained pipeline, preprocessing included, as one ONNX graph.

A request then carries raw columns and the server runs exactly what training ran: no
second implementation of imputation, ratios, scaling or encoding that could drift. The
export checks itself before it publishes anything: on the test split, the graph's labels
must equal the pipeline's and its probabilities must agree within PARITY_TOLERANCE. A
graph that fails is never written.

The model directory holds what KServe's storage initializer copies to /mnt/models:
`model.onnx` and `metadata.json` (feature schema, version, metrics, parity result and
the training data's reference statistics for drift monitoring).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
from skl2onnx import convert_sklearn, update_registered_converter
from skl2onnx.algebra.onnx_ops import OnnxDiv, OnnxEqual, OnnxGather, OnnxWhere
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from xgbflow import dataset, storage
from xgbflow.dataset import FeatureSchema
from xgbflow.errors import ParityError
from xgbflow.preprocess import RatioFeatures

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
#: Opsets written into the graph: the default domain and the classic-ML domain.
OPSETS = {"": 17, "ai.onnx.ml": 3}
#: Largest allowed absolute difference of a class probability between the pipeline and
#: the graph. Features are bit-identical (see preprocess); what is left is the order in
#: which float32 leaf values are summed, observed below 1e-6.
PARITY_TOLERANCE = 1e-5
#: Bins of the numeric reference histograms (training-split quantiles).
REFERENCE_BINS = 10


def _ratio_shape(operator) -> None:
    rows = operator.inputs[0].get_first_dimension()
    columns = len(operator.raw_operator.names)
    operator.outputs[0].type = FloatTensorType([rows, columns])


def _ratio_converter(scope, operator, container) -> None:
    opset = container.target_opset
    inputs = operator.inputs[0]
    ratios = operator.raw_operator
    numerator = OnnxGather(
        inputs, np.asarray(ratios.numerators, dtype=np.int64), axis=1, op_version=opset
    )
    denominator = OnnxGather(
        inputs,
        np.asarray(ratios.denominators, dtype=np.int64),
        axis=1,
        op_version=opset,
    )
    ratio = OnnxWhere(
        OnnxEqual(denominator, np.array([0], dtype=np.float32), op_version=opset),
        np.array([np.nan], dtype=np.float32),
        OnnxDiv(numerator, denominator, op_version=opset),
        op_version=opset,
        output_names=operator.outputs[:1],
    )
    ratio.add_to(scope, container)


def register_converters() -> None:
    """Teach skl2onnx the XGBoost classifier and the ratio features (idempotent)."""
    update_registered_converter(
        XGBClassifier,
        "XGBoostXGBClassifier",
        calculate_linear_classifier_output_shapes,
        convert_xgboost,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        RatioFeatures, "XgbflowRatioFeatures", _ratio_shape, _ratio_converter
    )


def to_onnx(pipeline: Pipeline, schema: FeatureSchema) -> onnx.ModelProto:
    """Convert the fitted pipeline; one [N, 1] input per feature, in schema order."""
    register_converters()
    inputs = [(name, FloatTensorType([None, 1])) for name in schema.numeric]
    inputs += [(name, StringTensorType([None, 1])) for name in schema.categorical]
    model = convert_sklearn(
        pipeline,
        initial_types=inputs,
        target_opset=OPSETS,
        options={id(pipeline): {"zipmap": False}},
        naming="xgbflow_",
    )
    onnx.checker.check_model(model)
    return model


def onnx_inputs(frame: pd.DataFrame, schema: FeatureSchema) -> dict[str, np.ndarray]:
    """Feed dictionary for the graph from a model frame (see dataset.to_model_frame)."""
    feeds = {name: frame[[name]].to_numpy(dtype=np.float32) for name in schema.numeric}
    feeds |= {name: frame[[name]].to_numpy(dtype=object) for name in schema.categorical}
    return feeds


def check_parity(
    model: onnx.ModelProto,
    pipeline: Pipeline,
    table: pd.DataFrame,
    schema: FeatureSchema,
    tolerance: float = PARITY_TOLERANCE,
) -> dict[str, Any]:
    """Compare the graph with the pipeline on `table`; raise ParityError on mismatch."""
    frame = dataset.to_model_frame(table, schema)
    session = ort.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    labels, probabilities = session.run(None, onnx_inputs(frame, schema))
    expected = pipeline.predict_proba(frame)
    expected_labels = pipeline.predict(frame)

    differing = int((labels != expected_labels).sum())
    max_difference = float(np.abs(probabilities - expected).max())
    result = {
        "rows": len(frame),
        "labels_differing": differing,
        "max_probability_difference": max_difference,
        "tolerance": tolerance,
        "passed": differing == 0 and max_difference <= tolerance,
    }
    if not result["passed"]:
        raise ParityError(
            f"ONNX parity failed on {len(frame)} rows: {differing} labels differ "
            f"(expected 0) and the largest probability difference is "
            f"{max_difference:.3g} (expected <= {tolerance:g}); "
            "the model was not exported"
        )
    logger.info(
        "parity passed on %d rows: labels identical, max |dp| %.2g",
        len(frame),
        max_difference,
    )
    return result


def reference_statistics(
    train: pd.DataFrame, schema: FeatureSchema, probability: np.ndarray
) -> dict[str, Any]:
    """Training-split distributions the server compares live traffic against."""
    frame = dataset.to_model_frame(train, schema)
    features: dict[str, Any] = {}
    for name in schema.numeric:
        values = frame[name].to_numpy(dtype=np.float64)
        present = values[~np.isnan(values)]
        features[name] = {
            "kind": "numeric",
            "missing_rate": 1 - present.size / values.size,
        }
        if present.size:
            features[name] |= _histogram(present) | {
                "mean": float(present.mean()),
                "std": float(present.std()),
            }
    for name in schema.categorical:
        column = frame[name]
        shares = column[column != dataset.MISSING_CATEGORY].value_counts(normalize=True)
        features[name] = {
            "kind": "categorical",
            "missing_rate": float((column == dataset.MISSING_CATEGORY).mean()),
            "categories": {str(k): float(v) for k, v in sorted(shares.items())},
        }
    prediction = _histogram(probability, edges=np.linspace(0, 1, REFERENCE_BINS + 1))
    return {
        "features": features,
        "prediction": {
            "positive_rate": float((probability >= 0.5).mean()),
            "probability_bin_edges": prediction["bin_edges"],
            "probability_bin_fractions": prediction["bin_fractions"],
        },
    }


def _histogram(values: np.ndarray, edges: np.ndarray | None = None) -> dict[str, list]:
    """Bin fractions over `edges` (default: deciles of `values`, outer edges open)."""
    if edges is None:
        inner = np.unique(
            np.quantile(values, np.linspace(0, 1, REFERENCE_BINS + 1)[1:-1])
        )
        edges = np.concatenate([[-np.inf], inner, [np.inf]])
    counts, _ = np.histogram(values, bins=edges)
    return {
        "bin_edges": [float(e) for e in edges],
        "bin_fractions": (counts / max(values.size, 1)).tolist(),
    }


def model_version(model_bytes: bytes, created: dt.datetime) -> str:
    """A sortable, content-addressed version: UTC time plus a hash prefix."""
    digest = hashlib.sha256(model_bytes).hexdigest()[:12]
    return f"{created:%Y%m%dT%H%M%SZ}-{digest}"


def export_model(
    pipeline: Pipeline,
    schema: FeatureSchema,
    *,
    train: pd.DataFrame,
    test: pd.DataFrame,
    evaluation: dict[str, Any],
    output_dir: str | Path,
    model_name: str = "xgbflow-classifier",
) -> dict[str, Any]:
    """Convert, check parity on `test`, then write the model directory.

    Returns the metadata written beside the graph.
    """
    model = to_onnx(pipeline, schema)
    parity = check_parity(model, pipeline, test, schema)
    model_bytes = model.SerializeToString()
    created = dt.datetime.now(dt.UTC).replace(microsecond=0)
    train_probability = pipeline.predict_proba(dataset.to_model_frame(train, schema))[
        :, 1
    ]

    metadata = {
        "model_name": model_name,
        "model_version": model_version(model_bytes, created),
        "created": created.isoformat().replace("+00:00", "Z"),
        "target": schema.target,
        "classes": [_plain(value) for value in schema.classes],
        "inputs": [
            {"name": name, "datatype": "FP32", "kind": "numeric", "shape": [-1, 1]}
            for name in schema.numeric
        ]
        + [
            {"name": name, "datatype": "BYTES", "kind": "categorical", "shape": [-1, 1]}
            for name in schema.categorical
        ],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
        ],
        "missing_values": {
            "numeric": "NaN (JSON null): imputed with the training median",
            "categorical": '"" (JSON null): its own category, seen in training',
            "unseen_category": "encoded as none of the known categories (all zeros)",
        },
        "metrics": evaluation["metrics"],
        "bayes_accuracy": evaluation.get("bayes_accuracy"),
        "parity": parity,
        "opsets": OPSETS,
        "reference": reference_statistics(train, schema, train_probability),
    }

    with storage.staging_directory(output_dir) as scratch:
        (scratch / MODEL_FILE).write_bytes(model_bytes)
        (scratch / METADATA_FILE).write_text(json.dumps(metadata, indent=2))
    logger.info(
        "exported %s version %s to %s",
        model_name,
        metadata["model_version"],
        output_dir,
    )
    return metadata


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
