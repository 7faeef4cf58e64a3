"""Score the trained model on the held-out test split and apply the quality gate.

Metrics are computed at the 0.5 threshold. For synthetic data the test split carries
each row's true probability, and the Bayes-optimal accuracy of the split is reported
beside the model's: the expected accuracy of the best possible classifier on those very
rows, mean(max(p, 1 - p)), and the accuracy that classifier actually scored against the
drawn labels.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn import metrics as skm

from xgbflow.errors import ConfigError, QualityGateError

logger = logging.getLogger(__name__)

#: The metrics of `classification_metrics`, in report order.
METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
#: Most points kept of the ROC curve; enough to draw it, small enough for the KFP UI.
ROC_POINTS = 200


def classification_metrics(
    y_true: np.ndarray, probability: np.ndarray, threshold: float = 0.5
) -> dict[str, float]:
    """Accuracy, precision, recall, F1 (positive class 1), ROC AUC and log loss."""
    predicted = (probability >= threshold).astype(np.int64)
    two_classes = len(np.unique(y_true)) == 2
    return {
        "accuracy": float(skm.accuracy_score(y_true, predicted)),
        "precision": float(skm.precision_score(y_true, predicted, zero_division=0)),
        "recall": float(skm.recall_score(y_true, predicted, zero_division=0)),
        "f1": float(skm.f1_score(y_true, predicted, zero_division=0)),
        "roc_auc": float(skm.roc_auc_score(y_true, probability))
        if two_classes
        else 0.5,
        "log_loss": float(skm.log_loss(y_true, probability, labels=[0, 1])),
    }


def roc_curve(y_true: np.ndarray, probability: np.ndarray) -> dict[str, list[float]]:
    """The ROC curve thinned to at most ROC_POINTS points, endpoints kept."""
    fpr, tpr, thresholds = skm.roc_curve(y_true, probability)
    keep = np.unique(
        np.linspace(0, len(fpr) - 1, min(ROC_POINTS, len(fpr))).astype(int)
    )
    thresholds = np.clip(thresholds[keep], 0.0, 1.0)
    return {
        "fpr": fpr[keep].tolist(),
        "tpr": tpr[keep].tolist(),
        "thresholds": thresholds.tolist(),
    }


def bayes_accuracy(
    y_true: np.ndarray, true_probability: np.ndarray
) -> dict[str, float]:
    """Expected and realised accuracy of the Bayes-optimal classifier on these rows."""
    return {
        "expected": float(np.maximum(true_probability, 1 - true_probability).mean()),
        "realised": float(((true_probability >= 0.5) == (y_true == 1)).mean()),
    }


def evaluate_predictions(
    y_true: np.ndarray,
    probability: np.ndarray,
    *,
    accuracy_gate: float = 0.90,
    true_probability: np.ndarray | None = None,
    class_names: tuple[Any, Any] = (0, 1),
) -> dict[str, Any]:
    """The evaluation report: metrics, confusion matrix, ROC curve, Bayes, gate."""
    if not 0 <= accuracy_gate <= 1:
        raise ConfigError(
            f"accuracy_gate={accuracy_gate!r} is out of range; expected 0 to 1"
        )

    metrics = classification_metrics(y_true, probability)
    matrix = skm.confusion_matrix(
        y_true, (probability >= 0.5).astype(int), labels=[0, 1]
    )
    report: dict[str, Any] = {
        "rows": len(y_true),
        "metrics": metrics,
        "confusion_matrix": {
            "labels": [str(name) for name in class_names],
            "matrix": matrix.tolist(),
        },
        "roc_curve": roc_curve(y_true, probability),
        "bayes_accuracy": (
            bayes_accuracy(y_true, true_probability)
            if true_probability is not None
            else None
        ),
        "gate": {
            "metric": "accuracy",
            "threshold": accuracy_gate,
            "value": metrics["accuracy"],
            "passed": metrics["accuracy"] >= accuracy_gate,
        },
    }
    logger.info(
        "test accuracy %.4f (gate %.2f: %s)",
        metrics["accuracy"],
        accuracy_gate,
        "passed" if report["gate"]["passed"] else "FAILED",
    )
    return report


def check_gate(report: dict[str, Any]) -> None:
    """Raise QualityGateError unless the report's gate passed."""
    gate = report["gate"]
    if not gate["passed"]:
        raise QualityGateError(
            f"quality gate failed: test {gate['metric']}={gate['value']:.4f}; "
            f"expected >= {gate['threshold']:.4f}"
        )
