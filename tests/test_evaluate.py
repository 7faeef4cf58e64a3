import numpy as np
import pytest

from xgbflow import evaluate
from xgbflow.errors import ConfigError, QualityGateError

Y = np.array([0, 0, 1, 1, 1])
P = np.array([0.1, 0.6, 0.7, 0.8, 0.4])


def test_metrics_of_a_known_example():
    metrics = evaluate.classification_metrics(Y, P)

    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["precision"] == pytest.approx(2 / 3)
    assert metrics["recall"] == pytest.approx(2 / 3)
    assert metrics["roc_auc"] == pytest.approx(5 / 6)  # 5 of 6 pairs ordered


def test_report_holds_confusion_matrix_roc_and_gate():
    report = evaluate.evaluate_predictions(Y, P, accuracy_gate=0.5)

    assert report["confusion_matrix"]["matrix"] == [[1, 1], [1, 2]]
    assert report["roc_curve"]["fpr"][0] == 0
    assert report["roc_curve"]["tpr"][-1] == 1
    assert report["gate"] == {
        "metric": "accuracy",
        "threshold": 0.5,
        "value": 0.6,
        "passed": True,
    }
    assert report["bayes_accuracy"] is None


def test_bayes_accuracy_expected_and_realised():
    truth = np.array([0.9, 0.2, 0.5, 0.99])

    bayes = evaluate.bayes_accuracy(np.array([1, 1, 1, 1]), truth)

    assert bayes["expected"] == pytest.approx((0.9 + 0.8 + 0.5 + 0.99) / 4)
    assert bayes["realised"] == pytest.approx(3 / 4)


def test_failed_gate_raises_with_value_and_threshold():
    report = evaluate.evaluate_predictions(Y, P, accuracy_gate=0.9)

    assert not report["gate"]["passed"]
    with pytest.raises(
        QualityGateError, match=r"accuracy=0\.6000; expected >= 0\.9000"
    ):
        evaluate.check_gate(report)


def test_gate_outside_zero_to_one_is_refused():
    with pytest.raises(ConfigError, match=r"accuracy_gate=1\.5"):
        evaluate.evaluate_predictions(Y, P, accuracy_gate=1.5)


def test_roc_curve_is_thinned():
    rng = np.random.default_rng(0)
    curve = evaluate.roc_curve(rng.integers(0, 2, 5000), rng.random(5000))

    assert len(curve["fpr"]) <= evaluate.ROC_POINTS
    assert all(0 <= t <= 1 for t in curve["thresholds"])
