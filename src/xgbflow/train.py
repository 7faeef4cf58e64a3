"""Train the XGBoost classifier on preprocessed features, with early stopping.

The result is one sklearn Pipeline, `preprocess` then `model`, so a single object turns
raw columns into probabilities; the export step converts exactly that object to ONNX.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier
from xgboost.callback import TrainingCallback

from xgbflow import dataset, evaluate, preprocess
from xgbflow.config import TrainParams
from xgbflow.dataset import FeatureSchema

logger = logging.getLogger(__name__)

#: Called after every boosting round with the zero-based round and
#: {"train": {...}, "validation": {...}}, each holding that round's logloss and error.
RoundCallback = Callable[[int, dict[str, dict[str, float]]], None]


@dataclass
class TrainedModel:
    """The fitted pipeline and how training went.

    history maps "train" and "validation" to per-round lists of logloss and error;
    best_iteration is the zero-based round that early stopping kept.
    """

    pipeline: Pipeline
    history: dict[str, dict[str, list[float]]]
    best_iteration: int
    params: TrainParams


class _EachRound(TrainingCallback):
    def __init__(self, callback: RoundCallback, every: int) -> None:
        self.callback = callback
        self.every = every

    def after_iteration(self, model, epoch, evals_log) -> bool:
        if epoch % self.every == 0:
            latest = {
                _EVAL_NAMES[name]: {
                    metric: values[-1] for metric, values in log.items()
                }
                for name, log in evals_log.items()
            }
            self.callback(epoch, latest)
        return False


_EVAL_NAMES = {"validation_0": "train", "validation_1": "validation"}


def _log_progress(params: TrainParams) -> RoundCallback:
    def report(epoch: int, latest: dict[str, dict[str, float]]) -> None:
        logger.info(
            "round %d/%d: validation logloss %.4f, error %.4f",
            epoch + 1,
            params.n_estimators,
            latest["validation"]["logloss"],
            latest["validation"]["error"],
        )

    return report


def train_model(
    preprocessor: ColumnTransformer,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    schema: FeatureSchema,
    params: TrainParams,
    *,
    callbacks: Sequence[RoundCallback] = (),
    progress_every: int = 50,
) -> TrainedModel:
    """Fit XGBoost on the already fitted `preprocessor`'s features.

    Early stopping watches the validation log loss. The returned pipeline predicts with
    the best round only, and so does its ONNX export: the booster is cut to that round.
    """
    x_train = preprocessor.transform(dataset.to_model_frame(train, schema))
    x_validation = preprocessor.transform(dataset.to_model_frame(validation, schema))
    y_train = dataset.labels(train, schema)
    y_validation = dataset.labels(validation, schema)

    hooks = [_EachRound(_log_progress(params), progress_every)]
    hooks += [_EachRound(callback, 1) for callback in callbacks]
    model = XGBClassifier(**params.xgboost_kwargs(), callbacks=hooks)
    model.fit(
        x_train,
        y_train,
        eval_set=[(x_train, y_train), (x_validation, y_validation)],
        verbose=False,
    )
    best = int(model.best_iteration)
    history = {
        _EVAL_NAMES[name]: {
            metric: list(map(float, values)) for metric, values in log.items()
        }
        for name, log in model.evals_result().items()
    }
    _keep_rounds(model, best + 1)
    logger.info(
        "trained %d rounds, kept %d", len(history["train"]["logloss"]), best + 1
    )

    pipeline = Pipeline([("preprocess", preprocessor), ("model", model)])
    return TrainedModel(pipeline, history, best, params)


def _keep_rounds(model: XGBClassifier, rounds: int) -> None:
    """Cut the booster to its first `rounds` rounds so every consumer agrees.

    XGBClassifier.predict would use the best round by itself, but converters read the
    whole booster; cutting it makes the saved model say exactly what it predicts.
    """
    trimmed = model.get_booster()[:rounds]
    for attribute in ("best_iteration", "best_score"):
        trimmed.set_attr(**{attribute: None})
    # set_params pushes every parameter into the current booster, turning the list of
    # evaluation metrics into one unparsable name: do it before swapping boosters in.
    model.set_params(callbacks=None, early_stopping_rounds=None, n_estimators=rounds)
    model._Booster = trimmed  # where the sklearn wrapper keeps its booster


def cross_validate(
    table: pd.DataFrame, schema: FeatureSchema, params: TrainParams
) -> list[dict[str, float]]:
    """k-fold (params.cv_folds) metrics; each fold refits preprocessing on its own rows.

    Within each training fold a stratified 15% is held out for early stopping, so the
    scored fold never influences the model that scores it.
    """
    folds = StratifiedKFold(params.cv_folds, shuffle=True, random_state=params.seed)
    results = []
    for index, (fit_rows, score_rows) in enumerate(
        folds.split(table, dataset.labels(table, schema)), start=1
    ):
        fit_table, scored = table.iloc[fit_rows], table.iloc[score_rows]
        train, validation = train_test_split(
            fit_table,
            test_size=0.15,
            stratify=fit_table[schema.target],
            random_state=params.seed,
        )
        preprocessor = preprocess.fit_preprocessor(
            preprocess.build_preprocessor(schema), dataset.to_model_frame(train, schema)
        )
        trained = train_model(preprocessor, train, validation, schema, params)
        probability = predict_proba(trained.pipeline, scored, schema)
        metrics = evaluate.classification_metrics(
            dataset.labels(scored, schema), probability
        )
        results.append({"fold": index} | metrics)
        logger.info(
            "fold %d/%d accuracy %.4f", index, params.cv_folds, metrics["accuracy"]
        )
    return results


def predict_proba(pipeline: Pipeline, table: pd.DataFrame, schema: FeatureSchema):
    """Positive-class probability for each row of a raw table."""
    frame = dataset.to_model_frame(table, schema)
    return pipeline.predict_proba(frame)[:, 1].astype(np.float64)
