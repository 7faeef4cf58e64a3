"""Bayesian optimisation built and fed as in Katib's service; random search draws."""

from __future__ import annotations

import math

import pytest
from skopt.space import Integer, Real
from tuning_edits import setting

from xgbflow.tune import suggest
from xgbflow.tune.experiment import parse_experiment


def test_bayesian_space_is_katibs_integer_and_log_uniform_real(
    experiment_document: dict,
) -> None:
    search = suggest.BayesianOptimization(parse_experiment(experiment_document))

    dimensions = {d.name: d for d in search.optimizer.space.dimensions}

    assert isinstance(dimensions["max_depth"], Integer)
    assert dimensions["max_depth"].bounds == (3, 10)
    # The manifest says uniform; Katib v0.19.0 searches every double log-uniformly.
    assert isinstance(dimensions["subsample"], Real)
    assert dimensions["subsample"].prior == "log-uniform"
    assert dimensions["learning_rate"].bounds == (0.01, 0.3)
    assert search.optimizer._n_initial_points == 5


def observed(name: str, values: dict, accuracy: float) -> suggest.Observation:
    return suggest.Observation(name, values, accuracy)


def test_bayesian_suggestions_are_typed_in_bounds_and_seeded(
    experiment_document: dict,
) -> None:
    experiment = parse_experiment(experiment_document)
    first, second = (suggest.BayesianOptimization(experiment) for _ in range(2))

    batches = [search.suggest([], 2) for search in (first, second)]

    assert batches[0] == batches[1]
    for point in batches[0]:
        for parameter in experiment.parameters:
            value = point[parameter.name]
            assert parameter.low <= value <= parameter.high
            assert isinstance(value, int if parameter.kind == "int" else float)


def test_bayesian_search_tells_each_success_once_then_models_them(
    experiment_document: dict,
) -> None:
    setting(
        experiment_document["spec"]["algorithm"]["algorithmSettings"],
        "n_initial_points",
        "2",
    )
    search = suggest.BayesianOptimization(parse_experiment(experiment_document))
    history = []
    for index in range(4):
        (point,) = search.suggest(history, 1)
        # A made-up objective with its peak at the lowest depth and learning rate.
        score = 1 - point["max_depth"] / 100 - point["learning_rate"]
        history.append(observed(f"t{index}", point, score))

    search.suggest(history, 1)

    assert search.told == {"t0", "t1", "t2", "t3"}
    assert len(search.optimizer.yi) == 4
    assert search.optimizer.yi[0] == pytest.approx(-history[0].objective)
    assert search.optimizer.models  # the surrogate model was fitted


def test_random_search_respects_bounds_distributions_and_seed(
    experiment_document: dict,
) -> None:
    experiment_document["spec"]["algorithm"] = {
        "algorithmName": "random",
        "algorithmSettings": [{"name": "random_state", "value": "7"}],
    }
    experiment = parse_experiment(experiment_document)

    draws = suggest.RandomSearch(experiment).suggest([], 400)

    assert draws[:5] == suggest.RandomSearch(experiment).suggest([], 5)
    depths = {point["max_depth"] for point in draws}
    assert depths == set(range(3, 11))
    rates = [point["learning_rate"] for point in draws]
    assert min(rates) >= 0.01
    assert max(rates) <= 0.3
    # logUniform: about as many draws below the geometric midpoint as above it.
    below = sum(rate < math.sqrt(0.01 * 0.3) for rate in rates)
    assert 150 < below < 250
    subsamples = [point["subsample"] for point in draws]
    assert 150 < sum(s < 0.8 for s in subsamples) < 250
