import numpy as np
import pytest

from xgbflow import dataset, preprocess, train
from xgbflow.config import TrainParams


@pytest.fixture(scope="module")
def parts(trained):
    return trained.schema, trained.splits


def _preprocessor(schema, splits):
    return preprocess.fit_preprocessor(
        preprocess.build_preprocessor(schema),
        dataset.to_model_frame(splits.train, schema),
    )


def test_early_stopping_keeps_only_the_best_rounds(parts):
    schema, splits = parts
    params = TrainParams(n_estimators=400, learning_rate=0.3, early_stopping_rounds=10)

    model = train.train_model(
        _preprocessor(schema, splits), splits.train, splits.validation, schema, params
    )

    rounds_run = len(model.history["validation"]["logloss"])
    assert rounds_run < 400
    assert rounds_run == model.best_iteration + 1 + 10
    booster = model.pipeline.named_steps["model"].get_booster()
    assert booster.num_boosted_rounds() == model.best_iteration + 1
    best = np.argmin(model.history["validation"]["logloss"])
    assert best == model.best_iteration


def test_callbacks_see_every_round(parts):
    schema, splits = parts
    seen = []

    train.train_model(
        _preprocessor(schema, splits),
        splits.train,
        splits.validation,
        schema,
        TrainParams(n_estimators=15, early_stopping_rounds=100),
        callbacks=[lambda step, metrics: seen.append((step, metrics))],
    )

    assert [step for step, _ in seen] == list(range(15))
    assert set(seen[0][1]) == {"train", "validation"}
    assert 0 <= seen[-1][1]["validation"]["error"] <= 1


def test_training_is_reproducible(parts):
    schema, splits = parts
    params = TrainParams(n_estimators=30)
    runs = [
        train.train_model(
            _preprocessor(schema, splits),
            splits.train,
            splits.validation,
            schema,
            params,
        )
        for _ in range(2)
    ]

    first, second = (train.predict_proba(r.pipeline, splits.test, schema) for r in runs)
    np.testing.assert_array_equal(first, second)


def test_cross_validation_scores_every_fold(trained):
    folds = train.cross_validate(
        trained.table, trained.schema, TrainParams(n_estimators=40, cv_folds=3)
    )

    assert [fold["fold"] for fold in folds] == [1, 2, 3]
    assert all(0.8 < fold["accuracy"] <= 1 for fold in folds)


def test_the_small_model_learns(trained):
    assert trained.evaluation["metrics"]["accuracy"] > 0.88
