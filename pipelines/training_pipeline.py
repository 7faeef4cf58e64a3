"""The training pipeline: data to a validated, evaluated, exported and tracked model.

Each component is a thin wrapper around one function of xgbflow.steps, running in the
step image that carries that function's dependencies. The same file runs in a cluster
(compiled to training_pipeline.yaml, submitted by the scheduled CronJob) and on a laptop
(`xgbflow run`, with the KFP local runner).

Compile after editing, and commit the YAML with the source (a test checks they agree):

    python pipelines/training_pipeline.py
"""

from pathlib import Path

from kfp import compiler, dsl
from kfp.dsl import (
    Artifact,
    ClassificationMetrics,
    Dataset,
    Input,
    Metrics,
    Model,
    Output,
)

IMAGE_REGISTRY = "ghcr.io/xgbflow"
IMAGE_TAG = "0.1.0"
PIPELINE_NAME = "xgbflow-training"
COMPILED = Path(__file__).with_suffix(".yaml")


def _image(name: str) -> str:
    return f"{IMAGE_REGISTRY}/{name}:{IMAGE_TAG}"


# The step images install xgbflow and kfp themselves, so nothing is installed at run
# time: pods start without reaching a package index.
_component = {"install_kfp_package": False}


@dsl.component(base_image=_image("data"), **_component)
def acquire_data(
    dataset: Output[Dataset],
    data_uri: str,
    target: str,
    categorical_columns: str,
    n_rows: int,
    seed: int,
    positive_rate: float,
    missing_rate: float,
):
    """Generate synthetic data, or load data_uri, as a dataset directory."""
    from xgbflow import steps

    steps.configure_logging()
    card = steps.acquire_data(
        dataset.path,
        data_uri=data_uri,
        target=target,
        categorical_columns=categorical_columns,
        n_rows=n_rows,
        seed=seed,
        positive_rate=positive_rate,
        missing_rate=missing_rate,
    )
    dataset.metadata.update(
        {
            "rows": card["rows"],
            "source": card["source"],
            "sha256": card["content_sha256"],
        }
    )


@dsl.component(base_image=_image("data"), **_component)
def validate_data(dataset: Input[Dataset], report: Output[Artifact]):
    """Check schema, ranges, missing values, labels, duplicates and size."""
    from xgbflow import steps

    steps.configure_logging()
    result = steps.validate_data(dataset.path, report.path)
    report.metadata["checks"] = len(result["checks"])


@dsl.component(base_image=_image("train"), **_component)
def preprocess_data(
    dataset: Input[Dataset],
    validation_report: Input[Artifact],
    splits: Output[Dataset],
    preprocessor: Output[Model],
    seed: int,
):
    """Split, then fit imputation, scaling and encoding on the training split."""
    from xgbflow import steps

    steps.configure_logging()
    steps.preprocess_data(
        dataset.path, validation_report.path, splits.path, preprocessor.path, seed=seed
    )


@dsl.component(base_image=_image("train"), **_component)
def train_model(
    splits: Input[Dataset],
    preprocessor: Input[Model],
    model: Output[Model],
    history: Output[Artifact],
    max_depth: int,
    learning_rate: float,
    n_estimators: int,
    min_child_weight: int,
    subsample: float,
    seed: int,
):
    """Train XGBoost with early stopping on the validation split."""
    from xgbflow import steps

    steps.configure_logging()
    result = steps.train_model(
        splits.path,
        preprocessor.path,
        model.path,
        history.path,
        {
            "max_depth": max_depth,
            "learning_rate": learning_rate,
            "n_estimators": n_estimators,
            "min_child_weight": min_child_weight,
            "subsample": subsample,
            "seed": seed,
        },
    )
    model.metadata["best_iteration"] = result["best_iteration"]


@dsl.component(base_image=_image("train"), **_component)
def evaluate_model(
    splits: Input[Dataset],
    model: Input[Model],
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    accuracy_gate: float,
):
    """Score the test split; record the gate and the Bayes-optimal accuracy."""
    from xgbflow import steps

    steps.configure_logging()
    report = steps.evaluate_model(
        splits.path, model.path, evaluation.path, accuracy_gate=accuracy_gate
    )
    for name, value in report["metrics"].items():
        metrics.log_metric(name, value)
    if report["bayes_accuracy"]:
        metrics.log_metric("bayes_accuracy", report["bayes_accuracy"]["expected"])
    metrics.log_metric("gate_passed", float(report["gate"]["passed"]))
    matrix = report["confusion_matrix"]
    classification.log_confusion_matrix(matrix["labels"], matrix["matrix"])
    curve = report["roc_curve"]
    classification.log_roc_curve(curve["fpr"], curve["tpr"], curve["thresholds"])


@dsl.component(base_image=_image("export"), **_component)
def export_onnx(
    splits: Input[Dataset],
    model: Input[Model],
    evaluation: Input[Artifact],
    onnx_model: Output[Model],
    model_name: str,
):
    """One ONNX graph with preprocessing; refuses to publish without parity."""
    from xgbflow import steps

    steps.configure_logging()
    metadata = steps.export_onnx(
        splits.path, model.path, evaluation.path, onnx_model.path, model_name=model_name
    )
    onnx_model.metadata.update(
        {"version": metadata["model_version"], "framework": "onnx"}
    )


@dsl.component(base_image=_image("track"), **_component)
def track_run(
    dataset: Input[Dataset],
    validation_report: Input[Artifact],
    model: Input[Model],
    history: Input[Artifact],
    evaluation: Input[Artifact],
    onnx_model: Input[Model],
    tracking: Output[Artifact],
    mlflow_tracking_uri: str,
    registered_model_name: str,
):
    """Log the run to MLflow; register the model if the gate and parity passed."""
    import json

    from xgbflow import steps

    steps.configure_logging()
    result = steps.track_run(
        dataset_dir=dataset.path,
        validation_report_path=validation_report.path,
        model_path=model.path,
        history_path=history.path,
        evaluation_path=evaluation.path,
        model_dir=onnx_model.path,
        tracking_uri=mlflow_tracking_uri,
        registered_model_name=registered_model_name,
    )
    with open(tracking.path, "w") as handle:
        json.dump(result, handle, indent=2)
    tracking.metadata.update({"run_id": result["run_id"]})


@dsl.component(base_image=_image("train"), **_component)
def enforce_gate(evaluation: Input[Artifact], tracking: Input[Artifact]):
    """Fail the run if the quality gate failed (after the run has been tracked)."""
    from xgbflow import evaluate, steps

    steps.configure_logging()
    del tracking  # an input only so that the gate is enforced after tracking
    evaluate.check_gate(steps.read_json(evaluation.path))


@dsl.component(base_image=_image("export"), **_component)
def publish_model(
    evaluation: Input[Artifact], onnx_model: Input[Model], model_publish_uri: str
) -> str:
    """Copy the model directory where serving reads it (gate checked again)."""
    from xgbflow import steps

    steps.configure_logging()
    return steps.publish_model(evaluation.path, onnx_model.path, model_publish_uri)


@dsl.pipeline(
    name=PIPELINE_NAME,
    description="Synthetic or given tabular data to a tracked ONNX XGBoost model.",
)
def training_pipeline(
    data_uri: str = "",
    target: str = "target",
    categorical_columns: str = "",
    n_rows: int = 100_000,
    seed: int = 42,
    positive_rate: float = 0.5,
    missing_rate: float = 0.02,
    max_depth: int = 4,
    learning_rate: float = 0.1,
    n_estimators: int = 600,
    min_child_weight: int = 1,
    subsample: float = 0.8,
    accuracy_gate: float = 0.9,
    mlflow_tracking_uri: str = "",
    registered_model_name: str = "xgbflow-classifier",
    model_publish_uri: str = "",
) -> str:
    data_task = acquire_data(
        data_uri=data_uri,
        target=target,
        categorical_columns=categorical_columns,
        n_rows=n_rows,
        seed=seed,
        positive_rate=positive_rate,
        missing_rate=missing_rate,
    )
    # Reading from object storage can fail transiently; generation is deterministic.
    data_task.set_retry(num_retries=2, backoff_duration="30s")

    validate_task = validate_data(dataset=data_task.outputs["dataset"])
    preprocess_task = preprocess_data(
        dataset=data_task.outputs["dataset"],
        validation_report=validate_task.outputs["report"],
        seed=seed,
    )
    train_task = train_model(
        splits=preprocess_task.outputs["splits"],
        preprocessor=preprocess_task.outputs["preprocessor"],
        max_depth=max_depth,
        learning_rate=learning_rate,
        n_estimators=n_estimators,
        min_child_weight=min_child_weight,
        subsample=subsample,
        seed=seed,
    )
    train_task.set_cpu_request("2").set_memory_request("4G").set_memory_limit("8G")

    evaluate_task = evaluate_model(
        splits=preprocess_task.outputs["splits"],
        model=train_task.outputs["model"],
        accuracy_gate=accuracy_gate,
    )
    export_task = export_onnx(
        splits=preprocess_task.outputs["splits"],
        model=train_task.outputs["model"],
        evaluation=evaluate_task.outputs["evaluation"],
        model_name=registered_model_name,
    )
    track_task = track_run(
        dataset=data_task.outputs["dataset"],
        validation_report=validate_task.outputs["report"],
        model=train_task.outputs["model"],
        history=train_task.outputs["history"],
        evaluation=evaluate_task.outputs["evaluation"],
        onnx_model=export_task.outputs["onnx_model"],
        mlflow_tracking_uri=mlflow_tracking_uri,
        registered_model_name=registered_model_name,
    )
    # The tracking server may be restarting or briefly unreachable.
    track_task.set_retry(num_retries=3, backoff_duration="30s", backoff_factor=2)

    # A failed gate is final: this step has no retries, unlike the upload after it.
    gate_task = enforce_gate(
        evaluation=evaluate_task.outputs["evaluation"],
        tracking=track_task.outputs["tracking"],
    )
    publish_task = publish_model(
        evaluation=evaluate_task.outputs["evaluation"],
        onnx_model=export_task.outputs["onnx_model"],
        model_publish_uri=model_publish_uri,
    ).after(gate_task)
    publish_task.set_retry(num_retries=2, backoff_duration="30s")
    return publish_task.output


def compile_pipeline(path: Path = COMPILED) -> Path:
    compiler.Compiler().compile(training_pipeline, str(path))
    return path


if __name__ == "__main__":
    print(compile_pipeline())
