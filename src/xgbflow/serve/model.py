"""The exported model directory as a kserve Model running on onnxruntime.

`load` reads metadata.json, opens model.onnx and checks that the graph's inputs and
outputs are the ones the metadata promises, so a missing, truncated or mismatched
directory fails before the server listens. Requests reach the model already parsed into
a `Batch` (see requests); `predict` runs the graph and `postprocess` shapes the answer
for the protocol the request came in on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from kserve import Model
from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

from xgbflow.serve.errors import ModelLoadError
from xgbflow.serve.metrics import ServingMetrics
from xgbflow.serve.requests import OUTPUT_NAMES, Batch, Feature

logger = logging.getLogger(__name__)

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
#: The ONNX element type each metadata datatype must have in the graph.
GRAPH_TYPES = {"FP32": "tensor(float)", "BYTES": "tensor(string)"}
KINDS = {"FP32": "numeric", "BYTES": "categorical"}
OUTPUT_TYPES = {"label": "tensor(int64)", "probabilities": "tensor(float)"}
_LOAD_ERRORS = (
    ort_errors.Fail,
    ort_errors.InvalidProtobuf,
    ort_errors.InvalidGraph,
    ort_errors.InvalidArgument,
    ort_errors.NoSuchFile,
    ort_errors.NotImplemented,
    ort_errors.RuntimeException,
    OSError,
)


@dataclass(frozen=True)
class Prediction:
    """The graph's answer for a batch: label [rows] int64, probabilities [rows, 2]."""

    batch: Batch
    labels: np.ndarray
    probabilities: np.ndarray


class OnnxModel(Model):
    """One exported model directory, served under `name`.

    `threads` is onnxruntime's intra-op thread count: a request of a few rows is
    faster on one thread than split across several.
    """

    def __init__(self, name: str, model_dir: str | Path, *, threads: int = 1) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.threads = threads
        self.metadata: dict[str, Any] = {}
        self.features: tuple[Feature, ...] = ()
        self.version = ""
        #: Set by the server once the model is loaded (metrics need its metadata).
        self.metrics: ServingMetrics | None = None
        self._session: ort.InferenceSession | None = None

    def load(self) -> bool:
        """Read and check the directory; raise ModelLoadError if it cannot serve."""
        self.metadata = read_metadata(self.model_dir / METADATA_FILE)
        self.features = features_of(self.metadata)
        self.version = str(self.metadata.get("model_version", ""))
        self._session = open_session(self.model_dir / MODEL_FILE, self.threads)
        check_signature(self._session, self.metadata, self.model_dir / MODEL_FILE)

        self.ready = True
        logger.info(
            "loaded model %s version %s from %s (%d features)",
            self.name,
            self.version,
            self.model_dir,
            len(self.features),
        )
        return self.ready

    def get_input_types(self) -> list[dict[str, Any]]:
        return [
            {"name": item["name"], "datatype": item["datatype"], "shape": [-1, 1]}
            for item in self.metadata["inputs"]
        ]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [
            {"name": item["name"], "datatype": item["datatype"], "shape": item["shape"]}
            for item in self.metadata["outputs"]
        ]

    def validate(self, payload: Batch) -> Batch:
        """Batches are validated while parsing (see requests), field by field."""
        return payload

    async def preprocess(self, payload: Batch, headers: dict | None = None) -> Batch:
        """Requests arrive parsed and checked by the endpoints: nothing left to do."""
        return payload

    def predict(self, payload: Batch, headers: dict | None = None) -> Prediction:
        labels, probabilities = self._session.run(OUTPUT_NAMES, payload.feeds)
        if self.metrics is not None:
            self.metrics.observe_predictions(payload.feeds, labels, probabilities)
        return Prediction(payload, labels, probabilities)

    async def postprocess(
        self,
        result: Prediction,
        headers: dict | None = None,
        response_headers: dict | None = None,
    ) -> dict[str, Any]:
        """The response body; numpy arrays are left for orjson to write."""
        if result.batch.protocol == "v1":
            return {
                "predictions": [
                    {"label": int(label), "probabilities": row}
                    for label, row in zip(
                        result.labels, result.probabilities, strict=True
                    )
                ]
            }
        tensors = {
            "label": {
                "name": "label",
                "datatype": "INT64",
                "shape": [result.batch.rows],
                "data": result.labels,
            },
            "probabilities": {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": [result.batch.rows, 2],
                "data": result.probabilities.ravel(),
            },
        }
        body: dict[str, Any] = {"model_name": self.name, "model_version": self.version}
        if result.batch.request_id is not None:
            body["id"] = result.batch.request_id
        body["outputs"] = [tensors[name] for name in result.batch.outputs]
        return body


def read_metadata(path: Path) -> dict[str, Any]:
    """metadata.json, checked for the fields the server relies on."""
    try:
        metadata = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelLoadError(
            f"model metadata {path} does not exist; expected a model directory written "
            "by the export step (model.onnx and metadata.json)"
        ) from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(
            f"model metadata {path} is not readable JSON ({exc}); expected the "
            "metadata.json written by the export step"
        ) from exc
    if not isinstance(metadata, dict):
        raise ModelLoadError(f"model metadata {path} is not a JSON object")
    for key in ("model_version", "inputs", "outputs", "reference"):
        if key not in metadata:
            raise ModelLoadError(
                f"model metadata {path} has no {key!r} field; expected the fields the "
                "export step writes"
            )
    return metadata


def features_of(metadata: dict[str, Any]) -> tuple[Feature, ...]:
    """The model's inputs in schema order, from metadata['inputs']."""
    features = []
    for index, item in enumerate(metadata["inputs"]):
        datatype = item.get("datatype") if isinstance(item, dict) else None
        if datatype not in KINDS or not isinstance(item.get("name"), str):
            raise ModelLoadError(
                f"metadata inputs[{index}] is {item!r}; expected a name and a datatype "
                f"of {sorted(KINDS)}"
            )
        features.append(Feature(item["name"], KINDS[datatype]))
    if not features:
        raise ModelLoadError("metadata 'inputs' is empty; expected one per feature")
    return tuple(features)


def open_session(path: Path, threads: int) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelLoadError(
            f"model file {path} does not exist; expected the ONNX graph written by "
            "the export step"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except _LOAD_ERRORS as exc:
        raise ModelLoadError(
            f"model file {path} cannot be loaded by onnxruntime ({exc}); expected a "
            "valid ONNX graph written by the export step"
        ) from exc


def check_signature(
    session: ort.InferenceSession, metadata: dict[str, Any], path: Path
) -> None:
    """The graph must take the metadata's inputs and give label and probabilities."""
    graph_inputs = [(item.name, item.type) for item in session.get_inputs()]
    expected_inputs = [
        (item["name"], GRAPH_TYPES[item["datatype"]]) for item in metadata["inputs"]
    ]
    if graph_inputs != expected_inputs:
        raise ModelLoadError(
            f"model file {path} takes inputs {graph_inputs}; expected "
            f"{expected_inputs} from metadata.json (are both from the same export?)"
        )
    graph_outputs = {item.name: item.type for item in session.get_outputs()}
    for name, kind in OUTPUT_TYPES.items():
        if graph_outputs.get(name) != kind:
            raise ModelLoadError(
                f"model file {path} has outputs {graph_outputs}; expected {name!r} of "
                f"type {kind}"
            )
