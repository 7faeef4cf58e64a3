"""Katib's `medianstop` early stopping (v0.19.0), both halves of it.

Service side, when trials are created: every succeeded trial contributes the average of
its first `start_step` objective values (in time order). Once at least
`min_trials_required` trials have succeeded, the rule's threshold is the arithmetic
mean of those averages. Despite the algorithm's name Katib takes the mean, not the
median; this reproduces Katib, so a local run stops the trials the cluster would stop.
A trial is created with the rule of that moment, or with none while too few trials have
succeeded, and keeps it for its whole life.

Collector side, while the trial runs: each report of the objective updates the best
value so far (highest when maximizing). At exactly the `start_step`-th report, and only
then, the best value is compared with the threshold; if it is worse (below when
maximizing, above when minimizing) the trial is stopped and marked EarlyStopped.
Early-stopped trials never count as succeeded, so they do not feed the threshold (the
search algorithm does hear of them, with the value they had reached).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DEFAULT_MIN_TRIALS_REQUIRED = 3
DEFAULT_START_STEP = 4


@dataclass(frozen=True)
class MedianStopSettings:
    """min_trials_required: succeeded trials before any rule; start_step: reports."""

    min_trials_required: int = DEFAULT_MIN_TRIALS_REQUIRED
    start_step: int = DEFAULT_START_STEP


@dataclass(frozen=True)
class StopRule:
    """Stop when the best objective by report `start_step` is worse than `threshold`."""

    metric: str
    threshold: float
    maximize: bool
    start_step: int

    def is_reached(self, best: float) -> bool:
        return best < self.threshold if self.maximize else best > self.threshold


def stop_rule(
    settings: MedianStopSettings,
    metric: str,
    maximize: bool,
    succeeded: Iterable[Sequence[float]],
) -> StopRule | None:
    """The rule for a trial created now, from each succeeded trial's objective values.

    `succeeded` holds, per succeeded trial, its objective values in time order.
    """
    averages = []
    for values in succeeded:
        first = list(values)[: settings.start_step]
        if first:
            averages.append(sum(first) / len(first))
    if len(averages) < settings.min_trials_required:
        return None
    return StopRule(
        metric, sum(averages) / len(averages), maximize, settings.start_step
    )


class RuleWatcher:
    """Follows one running trial's objective reports and says when to stop it."""

    def __init__(self, rule: StopRule) -> None:
        self.rule = rule
        self.reports = 0
        self.best: float | None = None
        self.reached = False

    def observe(self, value: float) -> bool:
        """Record one report of the objective; True once the rule is reached."""
        if self.reached:
            return True
        self.reports += 1
        if self.best is None:
            self.best = value
        elif self.rule.maximize:
            self.best = max(self.best, value)
        else:
            self.best = min(self.best, value)
        if self.reports == self.rule.start_step:
            self.reached = self.rule.is_reached(self.best)
        return self.reached
