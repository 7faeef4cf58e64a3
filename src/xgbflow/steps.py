"""The pipeline's steps as functions of artifact locations.

Each KFP component in pipelines/training_pipeline.py is a thin wrapper that calls one
function here with its artifacts' paths and its parameters; so do the tests and the
notebooks. Every function reads its inputs, does the work through the step modules
(generate, load, validate, preprocess, train, evaluate, export, track) and writes its
outputs; a failing step writes none of them, except validation, whose report is the
explanation of the failure.

Step modules are imported inside the functions that use them, so that each step image
needs only its own step's libraries.

Artifact layouts:
- dataset: a dataset directory (see xgbflow.dataset);
- splits: train/validation/test Parquet files and schema.json;
- preprocessor, model: a joblib file of the fitted object;
- reports (validation, evaluation, training history): JSON files;
- ONNX model: the model directory of xgbflow.export.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from xgbflow import dataset, storage, validate
from xgbflow.config import TrainParams
from xgbflow.dataset import FeatureSchema
from xgbflow.errors import ValidationError

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

    from xgbflow.preprocess import Splits

logger = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "validation", "test")
SCHEMA_FILE = "schema.json"


def configure_logging() -> None:
    """Log progress at INFO to stderr: each component calls this as its entry point."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")


def write_json(path: str | Path, content: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(json.dumps(content, indent=2))
    partial.replace(path)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def acquire_data(
    output_dir: str,
    *,
    data_uri: str = "",
    target: str = "target",
    categorical_columns: str = "",
    n_rows: int = 100_000,
    seed: int = 42,
    positive_rate: float = 0.5,
    missing_rate: float = 0.02,
) -> dict:
    """Generate synthetic data, or load `data_uri`, into the dataset directory."""
    if data_uri:
        from xgbflow import load

        categorical = [c.strip() for c in categorical_columns.split(",") if c.strip()]
        return load.load_dataset(data_uri, output_dir, target, categorical)

    from xgbflow import generate

    config = generate.GeneratorConfig(
        n_rows=n_rows, seed=seed, positive_rate=positive_rate, missing_rate=missing_rate
    )
    return generate.generate_dataset(output_dir, config)


def validate_data(dataset_dir: str, report_path: str) -> dict:
    """Validate the dataset; the report is written whether or not it passes."""
    table, schema, card = dataset.read_dataset(dataset_dir)
    try:
        report = validate.validate_table(table, schema, card.get("expectations"))
    except ValidationError as exc:
        write_json(report_path, exc.report)
        raise
    write_json(report_path, report)
    return report


def preprocess_data(
    dataset_dir: str,
    validation_report_path: str,
    splits_dir: str,
    preprocessor_path: str,
    *,
    seed: int = 42,
) -> None:
    """Split the validated data and fit the preprocessing on the training split."""
    from xgbflow import preprocess

    if not read_json(validation_report_path)["passed"]:
        raise ValidationError("the dataset did not pass validation", {})
    table, schema, _ = dataset.read_dataset(dataset_dir)
    splits = preprocess.split_dataset(table, schema, seed=seed)
    preprocessor = preprocess.fit_preprocessor(
        preprocess.build_preprocessor(schema),
        dataset.to_model_frame(splits.train, schema),
    )

    write_preprocessing(splits, schema, preprocessor, splits_dir, preprocessor_path)


def write_preprocessing(
    splits: Splits,
    schema: FeatureSchema,
    preprocessor: ColumnTransformer,
    splits_dir: str,
    preprocessor_path: str,
) -> None:
    """Save the splits with their schema and the fitted preprocessor.

    The layout is the preprocess step's; read_splits and joblib.load read it back.
    """
    with storage.staging_directory(splits_dir) as scratch:
        for name, frame in splits.items():
            frame.to_parquet(scratch / f"{name}.parquet", index=False)
        write_json(scratch / SCHEMA_FILE, schema.to_dict())
    _dump(preprocessor, preprocessor_path)


def read_splits(splits_dir: str):
    """The three splits (a preprocess.Splits) and the feature schema."""
    from xgbflow import preprocess

    folder = Path(splits_dir)
    frames = {name: pd.read_parquet(folder / f"{name}.parquet") for name in SPLIT_NAMES}
    schema = FeatureSchema.from_dict(read_json(folder / SCHEMA_FILE))
    return preprocess.Splits(**frames), schema


def train_model(
    splits_dir: str,
    preprocessor_path: str,
    model_path: str,
    history_path: str,
    params: dict[str, Any],
) -> dict:
    """Train with `params` (coerced into TrainParams); returns the history report."""
    import joblib

    from xgbflow import train

    train_params = TrainParams.from_mapping(params)
    splits, schema = read_splits(splits_dir)
    preprocessor = joblib.load(preprocessor_path)
    trained = train.train_model(
        preprocessor, splits.train, splits.validation, schema, train_params
    )
    history = {
        "params": train_params.to_dict(),
        "best_iteration": trained.best_iteration,
        "curves": trained.history,
    }
    if train_params.cv_folds:
        table = pd.concat([splits.train, splits.validation])
        history["cross_validation"] = train.cross_validate(table, schema, train_params)

    _dump(trained.pipeline, model_path)
    write_json(history_path, history)
    return history


def evaluate_model(
    splits_dir: str, model_path: str, evaluation_path: str, *, accuracy_gate: float
) -> dict:
    """Score the test split; the report records the gate but does not enforce it."""
    import joblib

    from xgbflow import evaluate, train

    splits, schema = read_splits(splits_dir)
    pipeline = joblib.load(model_path)
    probability = train.predict_proba(pipeline, splits.test, schema)
    truth = splits.test[schema.oracle].to_numpy() if schema.oracle else None
    report = evaluate.evaluate_predictions(
        dataset.labels(splits.test, schema),
        probability,
        accuracy_gate=accuracy_gate,
        true_probability=truth,
        class_names=schema.classes,
    )
    write_json(evaluation_path, report)
    return report


def export_onnx(
    splits_dir: str,
    model_path: str,
    evaluation_path: str,
    model_dir: str,
    *,
    model_name: str,
) -> dict:
    """Convert to ONNX, check parity on the test split, write the model directory."""
    import joblib

    from xgbflow import export

    splits, schema = read_splits(splits_dir)
    return export.export_model(
        joblib.load(model_path),
        schema,
        train=splits.train,
        test=splits.test,
        evaluation=read_json(evaluation_path),
        output_dir=model_dir,
        model_name=model_name,
    )


def track_run(
    *,
    dataset_dir: str,
    validation_report_path: str,
    model_path: str,
    history_path: str,
    evaluation_path: str,
    model_dir: str,
    tracking_uri: str,
    registered_model_name: str,
    run_name: str | None = None,
) -> dict:
    """Log everything the run produced to MLflow (see xgbflow.track)."""
    import joblib

    from xgbflow import track

    history = read_json(history_path)
    return track.track_run(
        params=history["params"],
        card=dataset.read_card(dataset_dir),
        validation_report=read_json(validation_report_path),
        evaluation=read_json(evaluation_path),
        history=history["curves"],
        pipeline=joblib.load(model_path),
        onnx_dir=Path(model_dir),
        metadata=read_json(Path(model_dir) / "metadata.json"),
        tracking_uri=tracking_uri,
        registered_model_name=registered_model_name,
        run_name=run_name,
    )


def publish_model(evaluation_path: str, model_dir: str, publish_uri: str) -> str:
    """Enforce the quality gate, then copy the model directory to `publish_uri`.

    Raises QualityGateError when the gate failed, so the run fails after it was
    tracked. An empty `publish_uri` publishes nothing; the model directory stays the
    run's artifact.
    """
    from xgbflow import evaluate

    evaluate.check_gate(read_json(evaluation_path))
    if not publish_uri:
        logger.info("no model_publish_uri given; the model stays at %s", model_dir)
        return model_dir
    storage.upload_directory(model_dir, publish_uri)
    logger.info("published %s to %s", model_dir, publish_uri)
    return publish_uri


def _dump(value: Any, path: str) -> None:
    import joblib

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".partial")
    joblib.dump(value, partial)
    partial.replace(target)
