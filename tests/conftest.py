"""Shared fixtures: one small synthetic dataset and one trained, exported model per run.

Built once per test session from the real step functions, so every suite (steps,
server, tuning, notebooks) tests against the same artefacts the pipeline produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from xgbflow import dataset, evaluate, export, generate, preprocess, train
from xgbflow.config import TrainParams
from xgbflow.dataset import FeatureSchema

SMALL_ROWS = 4_000
SMALL_PARAMS = TrainParams(n_estimators=120, max_depth=3, learning_rate=0.2)


@dataclass(frozen=True)
class Trained:
    """Everything the steps produce on the small dataset, for tests to inspect."""

    dataset_dir: Path
    table: pd.DataFrame
    schema: FeatureSchema
    splits: preprocess.Splits
    model: train.TrainedModel
    evaluation: dict
    model_dir: Path
    metadata: dict


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """A 4,000-row synthetic dataset directory (default generator settings)."""
    directory = tmp_path_factory.mktemp("data") / "synthetic"
    generate.generate_dataset(
        str(directory), generate.GeneratorConfig(n_rows=SMALL_ROWS, seed=7)
    )
    return directory


@pytest.fixture(scope="session")
def trained(small_dataset, tmp_path_factory) -> Trained:
    """The small dataset split, trained, evaluated and exported to a model directory."""
    table, schema, _ = dataset.read_dataset(str(small_dataset))
    splits = preprocess.split_dataset(table, schema, seed=7)
    preprocessor = preprocess.fit_preprocessor(
        preprocess.build_preprocessor(schema),
        dataset.to_model_frame(splits.train, schema),
    )
    model = train.train_model(
        preprocessor, splits.train, splits.validation, schema, SMALL_PARAMS
    )
    evaluation = evaluate.evaluate_predictions(
        dataset.labels(splits.test, schema),
        train.predict_proba(model.pipeline, splits.test, schema),
        true_probability=splits.test[schema.oracle].to_numpy(),
    )
    model_dir = tmp_path_factory.mktemp("models") / "xgbflow-classifier"
    metadata = export.export_model(
        model.pipeline,
        schema,
        train=splits.train,
        test=splits.test,
        evaluation=evaluation,
        output_dir=model_dir,
    )
    return Trained(
        small_dataset, table, schema, splits, model, evaluation, model_dir, metadata
    )


@pytest.fixture(scope="session")
def model_dir(trained) -> Path:
    """An exported model directory (model.onnx + metadata.json)."""
    return trained.model_dir
