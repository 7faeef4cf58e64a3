"""Drift and missing-value gauges against a known reference, and the PSI itself."""

from __future__ import annotations

import math

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from xgbflow.serve.metrics import ServingMetrics, population_stability_index
from xgbflow.serve.requests import Feature

FEATURES = (Feature("score", "numeric"), Feature("region", "categorical"))
EDGES = [-math.inf, 0.0, 1.0, math.inf]
REFERENCE = {
    "features": {
        "score": {
            "kind": "numeric",
            "missing_rate": 0.0,
            "bin_edges": EDGES,
            "bin_fractions": [0.25, 0.5, 0.25],
        },
        "region": {"kind": "categorical", "categories": {"north": 0.5, "south": 0.5}},
    },
    "prediction": {
        "probability_bin_edges": [0.0, 0.5, 1.0],
        "probability_bin_fractions": [0.5, 0.5],
    },
}


def metrics(window_rows: int = 1000, min_rows: int = 100) -> ServingMetrics:
    return ServingMetrics(
        "m",
        "v1",
        FEATURES,
        REFERENCE,
        window_rows=window_rows,
        min_rows=min_rows,
        registry=CollectorRegistry(),
    )


def feed(scores: list, regions: list[str], probabilities: list[float]):
    feeds = {
        "score": np.array(scores, dtype=np.float32).reshape(-1, 1),
        "region": np.array(regions, dtype=object).reshape(-1, 1),
    }
    positive = np.array(probabilities, dtype=np.float32)
    probabilities_2d = np.stack([1 - positive, positive], axis=1)
    labels = (positive >= 0.5).astype(np.int64)
    return feeds, labels, probabilities_2d


def gauges(served: ServingMetrics) -> dict[tuple[str, str], float]:
    values = {}
    for family in served.drift.collect():
        for sample in family.samples:
            values[(family.name, sample.labels.get("feature", ""))] = sample.value
    return values


def test_traffic_like_the_reference_has_a_small_psi():
    served = metrics()
    scores = [-0.5] * 50 + [0.5] * 100 + [1.5] * 50
    served.observe_predictions(
        *feed(scores, ["north", "south"] * 100, [0.2, 0.8] * 100)
    )

    values = gauges(served)
    assert values[("xgbflow_feature_drift_psi", "score")] == pytest.approx(0, abs=1e-9)
    assert values[("xgbflow_feature_drift_psi", "region")] == pytest.approx(0, abs=1e-9)
    assert values[("xgbflow_prediction_drift_psi", "")] == pytest.approx(0, abs=1e-9)
    assert values[("xgbflow_feature_missing_ratio", "score")] == 0


def test_shifted_traffic_unseen_categories_and_missing_values_show_up():
    served = metrics()
    scores = [1.5] * 150 + [None] * 50
    regions = ["east"] * 100 + ["north"] * 50 + [""] * 50
    served.observe_predictions(*feed(scores, regions, [0.9] * 200))

    values = gauges(served)
    assert values[("xgbflow_feature_drift_psi", "score")] > 0.25
    assert values[("xgbflow_feature_drift_psi", "region")] > 0.25
    assert values[("xgbflow_prediction_drift_psi", "")] > 0.25
    assert values[("xgbflow_feature_missing_ratio", "score")] == pytest.approx(0.25)
    assert values[("xgbflow_feature_missing_ratio", "region")] == pytest.approx(0.25)


def test_psi_is_nan_until_the_window_holds_enough_rows():
    served = metrics(min_rows=100)
    served.observe_predictions(*feed([0.5] * 10, ["north"] * 10, [0.4] * 10))

    values = gauges(served)
    assert math.isnan(values[("xgbflow_feature_drift_psi", "score")])
    assert values[("xgbflow_feature_missing_ratio", "score")] == 0


def test_the_window_forgets_rows_older_than_its_size():
    served = metrics(window_rows=100, min_rows=10)
    served.observe_predictions(*feed([1.5] * 300, ["east"] * 300, [0.9] * 300))
    gauges(served)
    for _ in range(4):
        scores = [-0.5] * 5 + [0.5] * 10 + [1.5] * 5
        served.observe_predictions(
            *feed(scores, ["north", "south"] * 10, [0.2, 0.8] * 10)
        )
    served.observe_predictions(
        *feed([0.5] * 20, ["north", "south"] * 10, [0.2, 0.8] * 10)
    )

    values = gauges(served)
    assert values[("xgbflow_feature_drift_psi", "region")] == pytest.approx(0, abs=1e-9)
    assert values[("xgbflow_feature_drift_psi", "score")] < 0.25


def test_population_stability_index_matches_its_formula():
    expected = np.array([0.5, 0.5])
    counts = np.array([80, 20])
    by_hand = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)

    assert population_stability_index(expected, counts, 1) == pytest.approx(by_hand)
    assert math.isnan(population_stability_index(expected, counts, 101))
