"""The dataset format every step reads: a Parquet table and a data card beside it.

A dataset is a directory (a local path or an object-storage prefix) holding
`data.parquet` and `data_card.json`. The card records the feature schema (which columns
are numeric, which categorical, which is the label), per-column statistics, how the data
was made and a content hash of the table. Generated and loaded data share this format,
so everything downstream of the first step is the same for both.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import fsspec
import numpy as np
import pandas as pd

from xgbflow import storage
from xgbflow.errors import DataError

DATA_FILE = "data.parquet"
CARD_FILE = "data_card.json"

#: Missing categorical values travel as the empty string: ONNX string tensors cannot
#: hold a null, so training, export and serving all use this one spelling.
MISSING_CATEGORY = ""


@dataclass(frozen=True)
class FeatureSchema:
    """Which columns are features of which kind, and which is the label.

    `classes` holds the original label values in the order of the encoded labels 0
    and 1.
    `oracle` names a column of true positive-class probabilities, present only in
    synthetic data; it is never a feature.
    """

    target: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    classes: tuple[Any, Any] = (0, 1)
    oracle: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "numeric": list(self.numeric),
            "categorical": list(self.categorical),
            "classes": list(self.classes),
            "oracle": self.oracle,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSchema:
        return cls(
            target=data["target"],
            numeric=tuple(data["numeric"]),
            categorical=tuple(data["categorical"]),
            classes=tuple(data["classes"]),
            oracle=data.get("oracle"),
        )


@dataclass
class ColumnStats:
    """Running statistics of one column, updated chunk by chunk."""

    kind: str
    count: int = 0
    missing: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    frequencies: dict[str, int] = field(default_factory=dict)

    def update(self, values: pd.Series) -> None:
        self.count += len(values)
        missing = values.isna()
        self.missing += int(missing.sum())
        present = values[~missing]
        if self.kind == "numeric":
            array = present.to_numpy(dtype=np.float64)
            if array.size:
                self.total += float(array.sum())
                self.total_sq += float(np.square(array).sum())
                self.minimum = min(self.minimum, float(array.min()))
                self.maximum = max(self.maximum, float(array.max()))
        else:
            for value, n in present.astype(str).value_counts().items():
                self.frequencies[value] = self.frequencies.get(value, 0) + int(n)

    def summary(self) -> dict[str, Any]:
        present = self.count - self.missing
        result: dict[str, Any] = {
            "kind": self.kind,
            "count": self.count,
            "missing_ratio": self.missing / self.count if self.count else 0.0,
        }
        if self.kind == "numeric" and present:
            mean = self.total / present
            variance = max(self.total_sq / present - mean * mean, 0.0)
            result |= {
                "mean": mean,
                "std": math.sqrt(variance),
                "min": self.minimum,
                "max": self.maximum,
            }
        elif self.kind != "numeric":
            result["frequencies"] = dict(sorted(self.frequencies.items()))
        return result


def describe_columns(
    schema: FeatureSchema, chunks: list[pd.DataFrame] | None = None
) -> dict[str, ColumnStats]:
    """Fresh statistics for every feature and the label, optionally fed some chunks."""
    stats = {name: ColumnStats("numeric") for name in schema.numeric}
    stats |= {name: ColumnStats("categorical") for name in schema.categorical}
    stats[schema.target] = ColumnStats("label")
    for chunk in chunks or []:
        for name, column in stats.items():
            column.update(chunk[name])
    return stats


def hash_file(uri: str) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with fsspec.open(uri, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_card(dataset_uri: str, card: dict[str, Any]) -> None:
    with storage.open_for_writing(storage.join(dataset_uri, CARD_FILE)) as handle:
        handle.write(json.dumps(card, indent=2, default=_json_default).encode())


def read_card(dataset_uri: str) -> dict[str, Any]:
    uri = storage.join(dataset_uri, CARD_FILE)
    try:
        with fsspec.open(uri, "rb") as handle:
            return json.loads(handle.read())
    except FileNotFoundError as exc:
        raise DataError(
            f"dataset {dataset_uri!r} has no {CARD_FILE}; expected a directory "
            "written by the generate or load step"
        ) from exc


def read_dataset(dataset_uri: str) -> tuple[pd.DataFrame, FeatureSchema, dict]:
    """The table, its schema and its full card."""
    card = read_card(dataset_uri)
    schema = FeatureSchema.from_dict(card["schema"])
    table = pd.read_parquet(storage.join(dataset_uri, DATA_FILE))
    return table, schema, card


def to_model_frame(table: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """The feature columns as the model sees them, in schema order.

    Numeric columns become float32 with NaN for missing values, exactly what the ONNX
    graph receives; categorical columns become Python strings with MISSING_CATEGORY for
    missing values. Training, evaluation and the export's parity check all go through
    here, so the sklearn pipeline and the ONNX graph see identical inputs.
    """
    missing = [name for name in schema.features if name not in table.columns]
    if missing:
        raise DataError(
            f"columns {missing} are missing from the table; expected every feature of "
            f"the schema: {list(schema.features)}"
        )
    frame = pd.DataFrame(index=table.index)
    for name in schema.numeric:
        frame[name] = pd.to_numeric(table[name], errors="raise").astype(np.float32)
    for name in schema.categorical:
        column = table[name].astype(object)
        frame[name] = column.where(column.notna(), MISSING_CATEGORY).astype(str)
    return frame


def labels(table: pd.DataFrame, schema: FeatureSchema) -> np.ndarray:
    """The label column encoded as 0/1 int64 (already so in a written dataset)."""
    return table[schema.target].to_numpy(dtype=np.int64)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to a data card")
