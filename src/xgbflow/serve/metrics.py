"""Prometheus metrics of the model server: traffic, predictions and drift.

Names and labels are fixed by the project's contract; every series carries model_name
and model_version.

    xgbflow_requests_total{protocol,status}       counter
    xgbflow_request_duration_seconds{protocol}    histogram
    xgbflow_predictions_total{class}              counter
    xgbflow_prediction_probability                histogram, positive-class probability
    xgbflow_feature_drift_psi{feature}            gauge, PSI over a sliding window
    xgbflow_feature_missing_ratio{feature}        gauge, over the same window
    xgbflow_prediction_drift_psi                  gauge, PSI of predicted probability

Drift is measured against the training reference in metadata.json: the population
stability index, sum((live - ref) * ln(live / ref)) over the reference's bins, of the
last `window_rows` rows. A request only queues its arrays (a few hundred nanoseconds);
binning and the PSI are computed when Prometheus scrapes, so drift costs requests
almost nothing. Until the window holds `min_rows` non-missing values a PSI is NaN,
which no alert threshold matches.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from xgbflow.serve.requests import Feature

#: Request latency buckets (seconds): a single-row request takes well under 1 ms.
DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
PROBABILITY_BUCKETS = tuple(round(0.1 * step, 1) for step in range(1, 11))
#: Floor for bin fractions in the PSI, so that an empty bin counts as rare, not as
#: an infinite divergence.
PSI_EPSILON = 1e-4
DEFAULT_WINDOW_ROWS = 10_000
DEFAULT_MIN_ROWS = 200
_MODEL_LABELS = ("model_name", "model_version")


class ServingMetrics:
    """All metrics of one served model, registered on `registry`."""

    def __init__(
        self,
        model_name: str,
        model_version: str,
        features: tuple[Feature, ...],
        reference: dict[str, Any],
        *,
        window_rows: int = DEFAULT_WINDOW_ROWS,
        min_rows: int = DEFAULT_MIN_ROWS,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self._model = (model_name, model_version)
        self._requests = Counter(
            "xgbflow_requests",
            "Inference requests answered, by protocol and HTTP status.",
            [*_MODEL_LABELS, "protocol", "status"],
            registry=registry,
        )
        self._duration = Histogram(
            "xgbflow_request_duration_seconds",
            "Time from the request's body being read to its answer being ready.",
            [*_MODEL_LABELS, "protocol"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self._predictions = Counter(
            "xgbflow_predictions",
            "Rows predicted, by predicted class.",
            [*_MODEL_LABELS, "class"],
            registry=registry,
        )
        self._probability = Histogram(
            "xgbflow_prediction_probability",
            "Predicted probability of the positive class, one observation per row.",
            _MODEL_LABELS,
            buckets=PROBABILITY_BUCKETS,
            registry=registry,
        )
        self._classes = {
            label: self._predictions.labels(*self._model, str(label))
            for label in (0, 1)
        }
        self._probability_child = self._probability.labels(*self._model)
        self._request_children: dict[tuple[str, int], Any] = {}
        self._duration_children: dict[str, Any] = {}
        self.drift = DriftMonitor(
            model_name,
            model_version,
            features,
            reference,
            window_rows=window_rows,
            min_rows=min_rows,
        )
        registry.register(self.drift)

    def observe_request(self, protocol: str, status: int, seconds: float) -> None:
        key = (protocol, status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._requests.labels(*self._model, protocol, str(status))
            self._request_children[key] = counter
        counter.inc()
        histogram = self._duration_children.get(protocol)
        if histogram is None:
            histogram = self._duration.labels(*self._model, protocol)
            self._duration_children[protocol] = histogram
        histogram.observe(seconds)

    def observe_predictions(
        self,
        feeds: dict[str, np.ndarray],
        labels: np.ndarray,
        probabilities: np.ndarray,
    ) -> None:
        """Count the batch's classes, observe its probabilities, queue it for drift."""
        positive = probabilities[:, 1]
        if len(labels) == 1:
            self._classes[int(labels[0])].inc()
            self._probability_child.observe(float(positive[0]))
        else:
            ones = int(labels.sum())
            if ones:
                self._classes[1].inc(ones)
            if len(labels) - ones:
                self._classes[0].inc(len(labels) - ones)
            for value in positive.tolist():
                self._probability_child.observe(value)
        self.drift.record(feeds, positive)


class DriftMonitor(Collector):
    """Sliding-window drift and missing-value gauges, computed at scrape time."""

    def __init__(
        self,
        model_name: str,
        model_version: str,
        features: tuple[Feature, ...],
        reference: dict[str, Any],
        *,
        window_rows: int,
        min_rows: int,
    ) -> None:
        self._model = [model_name, model_version]
        self._window_rows = window_rows
        self._min_rows = min_rows
        self._binners = [
            _binner(feature, reference["features"]) for feature in features
        ]
        prediction = reference["prediction"]
        self._prediction_binner = _NumericBins(
            "probability",
            prediction["probability_bin_edges"],
            prediction["probability_bin_fractions"],
        )
        # Column j holds feature j's bin codes; the last column the prediction's.
        self._window = np.zeros((window_rows, len(features) + 1), dtype=np.int16)
        self._filled = 0
        self._cursor = 0
        self._pending: deque[tuple[dict[str, np.ndarray], np.ndarray]] = deque()
        self._pending_rows = 0
        self._lock = threading.Lock()

    def record(self, feeds: dict[str, np.ndarray], probability: np.ndarray) -> None:
        """Queue a batch's inputs and positive-class probabilities [rows]."""
        with self._lock:
            self._pending.append((feeds, probability))
            self._pending_rows += len(probability)
            while self._pending_rows - len(self._pending[0][1]) >= self._window_rows:
                # Rows that would fall out of the window before the next scrape.
                self._pending_rows -= len(self._pending.popleft()[1])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        with self._lock:
            self._drain()
            window = self._window[: self._filled]
            drift, missing, prediction = self._gauges()
            for binner, column in zip(self._binners, window.T, strict=False):
                counts = np.bincount(column, minlength=binner.codes)
                labels = [*self._model, binner.name]
                missing.add_metric(labels, binner.missing_ratio(counts))
                drift.add_metric(labels, binner.psi(counts, self._min_rows))
            counts = np.bincount(window[:, -1], minlength=self._prediction_binner.codes)
            prediction.add_metric(
                self._model, self._prediction_binner.psi(counts, self._min_rows)
            )
        yield from (drift, missing, prediction)

    def _drain(self) -> None:
        """Bin every queued row and write the codes into the ring buffer."""
        if not self._pending:
            return
        batches = list(self._pending)
        self._pending.clear()
        self._pending_rows = 0
        codes = np.empty(
            (sum(len(p) for _, p in batches), self._window.shape[1]), dtype=np.int16
        )
        for index, binner in enumerate(self._binners):
            values = np.concatenate([feeds[binner.name] for feeds, _ in batches])
            codes[:, index] = binner.encode(values.ravel())
        probability = np.concatenate([p for _, p in batches])
        codes[:, -1] = self._prediction_binner.encode(probability)

        codes = codes[-self._window_rows :]
        end = self._cursor + len(codes)
        first = min(end, self._window_rows) - self._cursor
        self._window[self._cursor : self._cursor + first] = codes[:first]
        self._window[: len(codes) - first] = codes[first:]
        self._cursor = end % self._window_rows
        self._filled = min(self._filled + len(codes), self._window_rows)

    def _gauges(self) -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "xgbflow_feature_drift_psi",
                "Population stability index of a feature over the last rows served, "
                "against the training reference (NaN until enough rows).",
                labels=[*_MODEL_LABELS, "feature"],
            ),
            GaugeMetricFamily(
                "xgbflow_feature_missing_ratio",
                "Share of missing values of a feature over the last rows served.",
                labels=[*_MODEL_LABELS, "feature"],
            ),
            GaugeMetricFamily(
                "xgbflow_prediction_drift_psi",
                "Population stability index of the predicted positive-class "
                "probability over the last rows served (NaN until enough rows).",
                labels=list(_MODEL_LABELS),
            ),
        )


class _Bins:
    """Bin codes of one column; the last code always means a missing value."""

    name: str
    codes: int
    expected: np.ndarray | None = None

    def missing_ratio(self, counts: np.ndarray) -> float:
        total = counts.sum()
        return float(counts[-1] / total) if total else math.nan

    def psi(self, counts: np.ndarray, min_rows: int) -> float:
        if self.expected is None:
            return math.nan
        return population_stability_index(self.expected, counts[:-1], min_rows)


class _NumericBins(_Bins):
    """Codes 0..k-1 for the reference's k bins, k for a missing value."""

    def __init__(self, name: str, edges: list[float], fractions: list[float]) -> None:
        self.name = name
        self._inner_edges = np.asarray(edges[1:-1], dtype=np.float64)
        self.expected = np.asarray(fractions, dtype=np.float64)
        self.codes = len(self.expected) + 1

    def encode(self, values: np.ndarray) -> np.ndarray:
        codes = np.searchsorted(self._inner_edges, values, side="right")
        codes[np.isnan(values)] = self.codes - 1
        return codes


class _CategoricalBins(_Bins):
    """Codes 0..m-1 for the reference's categories, m for unseen, m+1 for missing."""

    def __init__(self, name: str, categories: dict[str, float]) -> None:
        self.name = name
        self._index = {value: code for code, value in enumerate(categories)}
        self._unseen = len(categories)
        # An unseen category had (almost) no share in training.
        self.expected = np.asarray([*categories.values(), 0.0], dtype=np.float64)
        self.codes = len(categories) + 2

    def encode(self, values: np.ndarray) -> np.ndarray:
        lookup = self._index.get
        unseen, missing = self._unseen, self._unseen + 1
        return np.fromiter(
            (missing if v == "" else lookup(v, unseen) for v in values),
            dtype=np.int16,
            count=len(values),
        )


class _Unbinned(_Bins):
    """A feature without reference bins (never present in training): missing share."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.codes = 2

    def encode(self, values: np.ndarray) -> np.ndarray:
        if values.dtype == object:
            return (values == "").astype(np.int16)
        return np.isnan(values).astype(np.int16)


def _binner(feature: Feature, references: dict[str, Any]):
    reference = references.get(feature.name, {})
    if feature.kind == "categorical" and reference.get("categories"):
        return _CategoricalBins(feature.name, reference["categories"])
    if feature.kind == "numeric" and reference.get("bin_edges"):
        return _NumericBins(
            feature.name, reference["bin_edges"], reference["bin_fractions"]
        )
    return _Unbinned(feature.name)


def population_stability_index(
    expected: np.ndarray, counts: np.ndarray, min_rows: int
) -> float:
    """PSI of observed bin `counts` against `expected` fractions; NaN if too few rows.

    0 means the same distribution; by common practice below 0.1 is stable, 0.1 to 0.25
    a moderate shift and above 0.25 a significant one.
    """
    total = counts.sum()
    if total < max(min_rows, 1):
        return math.nan
    actual = np.maximum(counts / total, PSI_EPSILON)
    reference = np.maximum(expected, PSI_EPSILON)
    return float(np.sum((actual - reference) * np.log(actual / reference)))
