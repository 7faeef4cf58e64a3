"""Record a training run in MLflow: parameters, metrics, plots, data card and models.

The tracking URI comes from the caller, else MLFLOW_TRACKING_URI, else a SQLite store
in ./mlruns. The model is registered only when the quality gate and the ONNX parity
check both passed, so the registry never holds a model that should not be served.
"""

from __future__ import annotations

import json
import logging
import tempfile
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import onnx
from matplotlib.figure import Figure
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from sklearn.pipeline import Pipeline

from xgbflow.config import resolve_tracking_uri

logger = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "xgbflow"
#: Types inside the sklearn pipeline that skops may load back: ours and XGBoost's.
SKOPS_TRUSTED_TYPES = [
    "numpy.dtype",
    "xgbflow.preprocess.RatioFeatures",
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
]


def requirements(*distributions: str) -> list[str]:
    """Pinned requirements of the installed distributions.

    Given explicitly, because MLflow's inference of a model's requirements loads the
    model again in a subprocess, which costs more than the rest of the logging.
    """
    return [f"{name}=={importlib_metadata.version(name)}" for name in distributions]


def ensure_experiment(client: MlflowClient, name: str, tracking_uri: str) -> str:
    """The id of experiment `name`, created if missing; artifacts beside SQLite."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifacts = None
    if tracking_uri.startswith("sqlite:///"):
        # Keep artifacts beside the database rather than under the working directory.
        database = Path(tracking_uri.removeprefix("sqlite:///"))
        artifacts = (database.parent / "artifacts").as_uri()
    return client.create_experiment(name, artifact_location=artifacts)


def plot_confusion_matrix(evaluation: dict[str, Any], path: Path) -> None:
    matrix = np.asarray(evaluation["confusion_matrix"]["matrix"])
    labels = evaluation["confusion_matrix"]["labels"]
    figure = Figure(figsize=(4, 4))
    axes = figure.subplots()
    axes.imshow(matrix, cmap="Blues")
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center")
    axes.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="actual",
        title="Confusion matrix (test)",
    )
    figure.tight_layout()
    figure.savefig(path)


def plot_roc_curve(evaluation: dict[str, Any], path: Path) -> None:
    curve = evaluation["roc_curve"]
    figure = Figure(figsize=(4, 4))
    axes = figure.subplots()
    axes.plot(
        curve["fpr"], curve["tpr"], label=f"AUC {evaluation['metrics']['roc_auc']:.3f}"
    )
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey")
    axes.set(
        xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)"
    )
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)


def plot_learning_curves(
    history: dict[str, dict[str, list[float]]], path: Path
) -> None:
    figure = Figure(figsize=(8, 3.5))
    panels = figure.subplots(1, 2)
    for panel, metric in zip(panels, ("logloss", "error"), strict=True):
        for split, values in history.items():
            panel.plot(values[metric], label=split)
        panel.set(xlabel="boosting round", title=metric)
        panel.legend()
    figure.tight_layout()
    figure.savefig(path)


def feature_importance(pipeline: Pipeline) -> dict[str, float]:
    """Gain-based importance per preprocessed feature, largest first."""
    names = pipeline.named_steps["preprocess"].get_feature_names_out()
    scores = pipeline.named_steps["model"].feature_importances_
    pairs = sorted(zip(names, scores, strict=True), key=lambda pair: -pair[1])
    return {str(name): float(score) for name, score in pairs}


def plot_feature_importance(importance: dict[str, float], path: Path, top: int = 20):
    items = list(importance.items())[:top][::-1]
    figure = Figure(figsize=(6, 0.3 * len(items) + 1))
    axes = figure.subplots()
    axes.barh([name for name, _ in items], [score for _, score in items])
    axes.set(xlabel="importance (gain share)", title="Feature importance")
    figure.tight_layout()
    figure.savefig(path)


def track_run(
    *,
    params: dict[str, Any],
    card: dict[str, Any],
    validation_report: dict[str, Any],
    evaluation: dict[str, Any],
    history: dict[str, dict[str, list[float]]],
    pipeline: Pipeline,
    onnx_dir: Path,
    metadata: dict[str, Any],
    tracking_uri: str = "",
    experiment: str = DEFAULT_EXPERIMENT,
    registered_model_name: str = "xgbflow-classifier",
    run_name: str | None = None,
) -> dict[str, Any]:
    """Log one run; returns where it went and whether the model was registered."""
    tracking_uri = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    experiment_id = ensure_experiment(client, experiment, tracking_uri)
    register = bool(evaluation["gate"]["passed"] and metadata["parity"]["passed"])

    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params({f"train.{k}": v for k, v in params.items()})
        generator = card.get("generator") or {}
        mlflow.log_params({f"data.{k}": v for k, v in generator.items()})
        mlflow.log_params(
            {"data.source": card["source"], "data.rows": card["rows"]}
            | {
                "data.sha256": card["content_sha256"],
                "model.version": metadata["model_version"],
            }
        )
        mlflow.log_metrics({f"test_{k}": v for k, v in evaluation["metrics"].items()})
        bayes = evaluation.get("bayes_accuracy")
        if bayes:
            mlflow.log_metrics(
                {
                    "test_bayes_accuracy": bayes["expected"],
                    "test_bayes_accuracy_realised": bayes["realised"],
                    "test_gap_to_bayes": bayes["expected"]
                    - evaluation["metrics"]["accuracy"],
                }
            )
        mlflow.log_metric(
            "parity_max_probability_difference",
            metadata["parity"]["max_probability_difference"],
        )
        _log_history(run.info.run_id, client, history)
        mlflow.set_tags(
            {
                "quality_gate": "passed" if evaluation["gate"]["passed"] else "failed",
                "onnx_parity": "passed" if metadata["parity"]["passed"] else "failed",
            }
        )

        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            importance = feature_importance(pipeline)
            plot_confusion_matrix(evaluation, folder / "confusion_matrix.png")
            plot_roc_curve(evaluation, folder / "roc_curve.png")
            plot_learning_curves(history, folder / "learning_curves.png")
            plot_feature_importance(importance, folder / "feature_importance.png")
            for name, content in {
                "data_card.json": card,
                "validation_report.json": validation_report,
                "evaluation.json": evaluation,
                "feature_importance.json": importance,
            }.items():
                (folder / name).write_text(json.dumps(content, indent=2))
            mlflow.log_artifacts(scratch, artifact_path="report")

        mlflow.log_artifacts(str(onnx_dir), artifact_path="model-directory")
        mlflow.sklearn.log_model(
            pipeline,
            name="sklearn-model",
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            pip_requirements=requirements("xgbflow", "scikit-learn", "xgboost-cpu"),
        )
        onnx_info = mlflow.onnx.log_model(
            onnx.load(str(Path(onnx_dir) / "model.onnx")),
            name="onnx-model",
            pip_requirements=requirements("onnx", "onnxruntime"),
        )
        registered = None
        if register:
            version = mlflow.register_model(onnx_info.model_uri, registered_model_name)
            registered = {"name": registered_model_name, "version": version.version}
            logger.info(
                "registered %s version %s", registered_model_name, version.version
            )
        else:
            logger.warning("model not registered: quality gate or parity failed")

    result = {
        "tracking_uri": tracking_uri,
        "experiment_id": experiment_id,
        "run_id": run.info.run_id,
        "registered_model": registered,
    }
    logger.info("tracked run %s in %s", run.info.run_id, tracking_uri)
    return result


def _log_history(run_id: str, client: MlflowClient, history) -> None:
    """Per-round learning curves as step metrics, in batches."""
    metrics = [
        Metric(f"{split}_{name}", value, 0, step)
        for split, curves in history.items()
        for name, values in curves.items()
        for step, value in enumerate(values)
    ]
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
