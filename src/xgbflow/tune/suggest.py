"""Where the next trials come from: the two search algorithms the local runner knows.

`bayesianoptimization` does what Katib v0.19.0's scikit-optimize suggestion service
does: one `skopt.Optimizer` over Integer(min, max) for ints and
Real(min, max, "log-uniform") for every double (whatever distribution the manifest
names), built with the Experiment's base_estimator, n_initial_points, acq_func,
acq_optimizer and random_state. Before each request it is told, in one call, the
parameters and objective of every trial that succeeded or was stopped early since the
last request (an early-stopped trial with the value it had reached; negated when
maximizing, as skopt minimizes); then it is asked for as many points as there are free
slots, `ask(n_points=k)`, even for one. Failed trials are never told. skopt caches an
`ask(n_points=k)` answer until the next `tell`, so after a failure with nothing new to
tell the same point comes back, in Katib as here.

`random` draws each parameter independently with the distributions Katib's random
search (hyperopt) uses: ints uniformly on the whole numbers from min to max (a
quantized uniform with step 1), doubles uniformly or log-uniformly as the manifest says,
quantized to `step` when one is set. It has the same distributions, not the same random
stream, as Katib's.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from xgbflow.tune.experiment import Experiment, Parameter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Observation:
    """A finished trial as a search algorithm sees it."""

    name: str
    values: Mapping[str, float]
    objective: float


class BayesianOptimization:
    """scikit-optimize, configured and fed as Katib's suggestion service does."""

    def __init__(self, experiment: Experiment) -> None:
        import skopt

        settings = experiment.algorithm.settings
        self.parameters = experiment.parameters
        self.maximize = experiment.objective.maximize
        dimensions = [
            skopt.space.Integer(int(p.low), int(p.high), name=p.name)
            if p.kind == "int"
            else skopt.space.Real(p.low, p.high, "log-uniform", name=p.name)
            for p in self.parameters
        ]
        self.optimizer = skopt.Optimizer(
            dimensions,
            base_estimator=settings["base_estimator"],
            n_initial_points=settings["n_initial_points"],
            acq_func=settings["acq_func"],
            acq_optimizer=settings["acq_optimizer"],
            random_state=settings["random_state"],
        )
        self.told: set[str] = set()

    def suggest(self, finished: Sequence[Observation], count: int) -> list[dict]:
        """`count` new points, after telling the optimizer about new results."""
        new = [trial for trial in finished if trial.name not in self.told]
        with warnings.catch_warnings():
            # Re-proposing an evaluated integer point and an unconverged GP fit are
            # ordinary in a small search; Katib's service lets both pass too.
            warnings.filterwarnings(
                "ignore", message="The objective has been evaluated"
            )
            warnings.filterwarnings("ignore", module="sklearn.gaussian_process")
            if new:
                points = [[t.values[p.name] for p in self.parameters] for t in new]
                losses = [-t.objective if self.maximize else t.objective for t in new]
                self.optimizer.tell(points, losses)
                self.told.update(trial.name for trial in new)
                logger.debug("told the optimizer %d new results", len(new))
            asked = self.optimizer.ask(n_points=count)
        return [
            {
                p.name: _typed(p, value)
                for p, value in zip(self.parameters, point, strict=True)
            }
            for point in asked
        ]


class RandomSearch:
    """Independent draws per parameter, seeded by the Experiment's random_state."""

    def __init__(self, experiment: Experiment) -> None:
        self.parameters = experiment.parameters
        self.rng = np.random.default_rng(experiment.algorithm.settings["random_state"])

    def suggest(self, finished: Sequence[Observation], count: int) -> list[dict]:
        del finished  # random search learns nothing from results
        return [{p.name: self._draw(p) for p in self.parameters} for _ in range(count)]

    def _draw(self, parameter: Parameter) -> int | float:
        if parameter.kind == "int":
            step = parameter.step or 1
            value = np.round(self.rng.uniform(parameter.low, parameter.high) / step)
            return int(min(max(value * step, parameter.low), parameter.high))
        if parameter.distribution == "logUniform":
            value = math.exp(
                self.rng.uniform(math.log(parameter.low), math.log(parameter.high))
            )
        else:
            value = float(self.rng.uniform(parameter.low, parameter.high))
        if parameter.step:
            value = round(value / parameter.step) * parameter.step
        return min(max(value, parameter.low), parameter.high)


def _typed(parameter: Parameter, value) -> int | float:
    return int(value) if parameter.kind == "int" else float(value)


def build_suggester(experiment: Experiment) -> BayesianOptimization | RandomSearch:
    """The search algorithm the Experiment names (checked by parse_experiment)."""
    if experiment.algorithm.name == "bayesianoptimization":
        return BayesianOptimization(experiment)
    return RandomSearch(experiment)
