"""Train one model through the project's steps and write what every server loads.

    <work>/model/           the exported model directory (model.onnx, metadata.json)
    <work>/mlserver/        model.json: the same XGBoost booster, for MLServer's runtime
    <work>/rows.json        request rows: raw features (for the xgbflow server and
                            onnxruntime) and the pipeline's preprocessed features (for
                            MLServer, whose XGBoost runtime has no preprocessing)

MLServer's XGBoost runtime takes one FP32 matrix of model features, so it is fed what
the fitted ColumnTransformer produces; the project's server gets raw columns and runs
imputation, ratios, scaling and one-hot encoding inside its ONNX graph. The results
say so next to the numbers.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np

from xgbflow import dataset, evaluate, export, generate, preprocess, train
from xgbflow.config import TrainParams

logger = logging.getLogger(__name__)

ROWS = 20_000
SEED = 11
SAMPLE_ROWS = 2_000


def prepare_models(work: Path) -> dict:
    """Write the model directory, the booster and the request rows; return a summary."""
    summary_file = work / "prepared.json"
    if summary_file.exists():
        return json.loads(summary_file.read_text())

    data_dir = work / "data"
    generate.generate_dataset(
        str(data_dir), generate.GeneratorConfig(n_rows=ROWS, seed=SEED)
    )
    table, schema, _ = dataset.read_dataset(str(data_dir))
    splits = preprocess.split_dataset(table, schema, seed=SEED)
    preprocessor = preprocess.fit_preprocessor(
        preprocess.build_preprocessor(schema),
        dataset.to_model_frame(splits.train, schema),
    )
    params = TrainParams()
    model = train.train_model(
        preprocessor, splits.train, splits.validation, schema, params
    )
    evaluation = evaluate.evaluate_predictions(
        dataset.labels(splits.test, schema),
        train.predict_proba(model.pipeline, splits.test, schema),
    )
    metadata = export.export_model(
        model.pipeline,
        schema,
        train=splits.train,
        test=splits.test,
        evaluation=evaluation,
        output_dir=work / "model",
    )

    (work / "mlserver").mkdir(parents=True, exist_ok=True)
    model.pipeline.named_steps["model"].save_model(work / "mlserver" / "model.json")

    sample = splits.test.head(SAMPLE_ROWS)
    frame = dataset.to_model_frame(sample, schema)
    features = model.pipeline.named_steps["preprocess"].transform(frame)
    probabilities = model.pipeline.predict_proba(frame)[:, 1]
    rows = {
        "features": list(schema.features),
        "numeric": list(schema.numeric),
        "raw": [
            [_json_value(frame[name].iloc[i]) for name in schema.features]
            for i in range(len(frame))
        ],
        "preprocessed": [
            [_json_value(v) for v in row] for row in features.astype(np.float32)
        ],
        "positive_probability": probabilities.tolist(),
    }
    (work / "rows.json").write_text(json.dumps(rows))

    summary = {
        "rows": ROWS,
        "seed": SEED,
        "params": params.to_dict(),
        "trees": model.best_iteration + 1,
        "model_features": int(features.shape[1]),
        "model_version": metadata["model_version"],
        "accuracy": metadata["metrics"]["accuracy"],
    }
    summary_file.write_text(json.dumps(summary, indent=2))
    return summary


def _json_value(value):
    """NaN and "" (missing) as JSON null; numpy scalars as Python values."""
    if isinstance(value, str):
        return value or None
    value = float(value)
    return None if math.isnan(value) else value
