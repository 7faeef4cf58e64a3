"""Bring your own data: turn a CSV or Parquet table into a dataset directory.

Given the label column (and optionally which columns are categorical), the table is
checked for a usable shape, its label encoded as 0/1, and written in the same format as
the synthetic data with a data card, so validation, training and export treat it alike.
Columns not named categorical must be numeric; text columns must be named.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import fsspec
import numpy as np
import pandas as pd

from xgbflow import dataset, storage
from xgbflow.errors import DataError

logger = logging.getLogger(__name__)

READERS = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


def read_table(uri: str) -> pd.DataFrame:
    """Read a CSV or Parquet file from a path or storage URI."""
    suffix = next((s for s in READERS if uri.lower().endswith(s)), None)
    if suffix is None:
        raise DataError(
            f"data_uri={uri!r} has an unsupported extension; expected one of "
            f"{sorted(READERS)}"
        )
    try:
        with fsspec.open(uri, "rb") as handle:
            return READERS[suffix](handle)
    except FileNotFoundError as exc:
        raise DataError(f"data_uri={uri!r} does not exist") from exc
    except (ValueError, OSError) as exc:
        raise DataError(
            f"data_uri={uri!r} could not be read as {suffix}: {exc}"
        ) from exc


def infer_schema(
    table: pd.DataFrame, target: str, categorical: Sequence[str] = ()
) -> dataset.FeatureSchema:
    """The feature schema of `table`: named categoricals, every other column numeric."""
    columns = list(table.columns)
    if target not in columns:
        raise DataError(f"target={target!r} is not a column; the columns are {columns}")
    unknown = [name for name in categorical if name not in columns]
    if unknown:
        raise DataError(
            f"categorical columns {unknown} are not in the table; the columns are "
            f"{columns}"
        )
    if target in categorical:
        raise DataError(f"target={target!r} cannot also be a categorical feature")

    numeric = [c for c in columns if c != target and c not in categorical]
    text = [c for c in numeric if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        raise DataError(
            f"columns {text} hold text but were not named categorical; expected "
            "numbers, or pass them as categorical columns"
        )
    classes = sorted(table[target].dropna().unique().tolist())
    if len(classes) != 2:
        raise DataError(
            f"target={target!r} has {len(classes)} distinct values "
            f"{classes[:10]}; expected exactly 2 for binary classification"
        )
    return dataset.FeatureSchema(
        target=target,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        classes=(classes[0], classes[1]),
    )


def load_dataset(
    source_uri: str, output_uri: str, target: str, categorical: Sequence[str] = ()
) -> dict:
    """Write `source_uri` as a dataset directory at `output_uri`; returns the card."""
    table = read_table(source_uri)
    schema = infer_schema(table, target, categorical)
    if table[target].isna().any():
        raise DataError(
            f"target={target!r} has {int(table[target].isna().sum())} missing values; "
            "expected a label on every row"
        )

    out = table[[*schema.features, target]].copy()
    out[target] = (out[target] == schema.classes[1]).astype(np.int64)
    for name in schema.numeric:
        out[name] = out[name].astype(np.float64)
    for name in schema.categorical:
        column = out[name]
        out[name] = column.where(column.isna(), column.astype(str))

    data_uri = storage.join(output_uri, dataset.DATA_FILE)
    with storage.open_for_writing(data_uri) as handle:
        out.to_parquet(handle, index=False)
    stats = dataset.describe_columns(schema, [out])
    card = {
        "source": "file",
        "source_uri": source_uri,
        "rows": len(out),
        "schema": schema.to_dict(),
        "statistics": {name: column.summary() for name, column in stats.items()},
        "expectations": {"ranges": {}, "labels": [0, 1]},
        "bayes_accuracy": None,
        "content_sha256": dataset.hash_file(data_uri),
    }
    dataset.write_card(output_uri, card)
    logger.info("loaded %d rows from %s into %s", len(out), source_uri, output_uri)
    return card
