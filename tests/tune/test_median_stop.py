"""medianstop as Katib v0.19.0 computes its threshold and applies its rule."""

from __future__ import annotations

import pytest

from xgbflow.tune.stopping import MedianStopSettings, RuleWatcher, StopRule, stop_rule

SETTINGS = MedianStopSettings(min_trials_required=3, start_step=2)


def test_no_rule_until_enough_trials_succeeded() -> None:
    assert stop_rule(SETTINGS, "accuracy", True, [[0.8, 0.9], [0.7, 0.9]]) is None


def test_threshold_is_the_mean_of_each_trials_first_steps_average() -> None:
    succeeded = [[1.0, 1.0, 50.0], [2.0, 2.0], [100.0, 100.0, 0.0]]

    rule = stop_rule(SETTINGS, "accuracy", True, succeeded)

    # Averages of the first two values: 1, 2, 100. Katib takes their mean (34.33),
    # not their median (2).
    assert rule == StopRule("accuracy", pytest.approx(103 / 3), True, 2)


def test_a_trial_with_fewer_reports_than_start_step_averages_what_it_has() -> None:
    rule = stop_rule(MedianStopSettings(1, 4), "loss", False, [[0.2, 0.4]])

    assert rule.threshold == pytest.approx(0.3)
    assert not rule.maximize


def test_rule_is_judged_once_at_start_step_on_the_best_value_so_far() -> None:
    watcher = RuleWatcher(StopRule("accuracy", 0.85, True, 3))

    decisions = [watcher.observe(value) for value in (0.70, 0.86, 0.60, 0.10, 0.10)]

    # The best of the first three reports (0.86) is above the threshold; later,
    # worse reports are never judged again.
    assert decisions == [False, False, False, False, False]


def test_trial_below_the_threshold_at_start_step_is_stopped() -> None:
    watcher = RuleWatcher(StopRule("accuracy", 0.85, True, 3))

    decisions = [watcher.observe(value) for value in (0.70, 0.84, 0.80, 0.99)]

    assert decisions == [False, False, True, True]


def test_minimizing_stops_trials_above_the_threshold() -> None:
    watcher = RuleWatcher(StopRule("loss", 0.3, False, 2))

    assert [watcher.observe(v) for v in (0.5, 0.4)] == [False, True]
