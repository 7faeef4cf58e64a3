"""The rendered Experiment is read as Katib reads it, and every broken one is refused.

Each broken case edits a copy of dev's rendered Experiment in one place and expects
that one problem, named by its field, before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from tuning_edits import setting

from xgbflow.tune import local
from xgbflow.tune.experiment import ExperimentError, parse_experiment

Edit = Callable[[dict], None]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_overlays_render_a_runnable_experiment(
    rendered_experiments: dict[str, dict], env: str
) -> None:
    document = rendered_experiments[env]

    experiment = parse_experiment(document)

    spec = document["spec"]
    assert experiment.max_trial_count == spec["maxTrialCount"]
    assert experiment.parallel_trial_count == spec["parallelTrialCount"]
    assert experiment.max_failed_trial_count == spec["maxFailedTrialCount"]
    assert [p.name for p in experiment.parameters] == [
        p["name"] for p in spec["parameters"]
    ]
    assert experiment.algorithm.settings["n_initial_points"] == 5
    assert experiment.objective.strategies["accuracy"] == "latest"
    assert experiment.early_stopping.start_step == 10
    command = experiment.template.command_for(
        {
            "max_depth": "6",
            "learning_rate": "0.05",
            "n_estimators": "300",
            "min_child_weight": "2",
            "subsample": "0.9",
        }
    )
    assert command == [
        "xgbflow",
        "trial",
        "--max-depth=6",
        "--learning-rate=0.05",
        "--n-estimators=300",
        "--min-child-weight=2",
        "--subsample=0.9",
    ]


def param(document: dict, name: str) -> dict:
    (found,) = [p for p in document["spec"]["parameters"] if p["name"] == name]
    return found


def set_bounds(name: str, low: str, high: str) -> Edit:
    def edit(document: dict) -> None:
        param(document, name)["feasibleSpace"].update(min=low, max=high)

    return edit


def set_algorithm_setting(name: str, value: str) -> Edit:
    def edit(document: dict) -> None:
        setting(document["spec"]["algorithm"]["algorithmSettings"], name, value)

    return edit


def drop_algorithm_setting(name: str) -> Edit:
    def edit(document: dict) -> None:
        items = document["spec"]["algorithm"]["algorithmSettings"]
        items[:] = [item for item in items if item["name"] != name]

    return edit


def set_reference(trial_parameter: str, reference: str) -> Edit:
    def edit(document: dict) -> None:
        for item in document["spec"]["trialTemplate"]["trialParameters"]:
            if item["name"] == trial_parameter:
                item["reference"] = reference

    return edit


def set_spec(path: str, value: object) -> Edit:
    def edit(document: dict) -> None:
        *parents, last = path.split(".")
        target = document["spec"]
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value

    return edit


def add_metric(name: str) -> Edit:
    def edit(document: dict) -> None:
        document["spec"]["objective"]["additionalMetricNames"].append(name)

    return edit


def rename_objective(name: str) -> Edit:
    def edit(document: dict) -> None:
        objective = document["spec"]["objective"]
        old = objective["objectiveMetricName"]
        objective["objectiveMetricName"] = name
        for strategy in objective["metricStrategies"]:
            if strategy["name"] == old:
                strategy["name"] = name

    return edit


def set_filter(pattern: str) -> Edit:
    return set_spec(
        "metricsCollectorSpec.source", {"filter": {"metricsFormat": [pattern]}}
    )


BROKEN = {
    "min above max": (
        set_bounds("max_depth", "10", "3"),
        "spec.parameters[0].feasibleSpace: max_depth: min 10 is not below max 3",
    ),
    "non-positive double under Bayesian optimisation": (
        set_bounds("subsample", "0", "1"),
        "spec.parameters[4].feasibleSpace.min: subsample: min 0 is not positive; "
        "Katib's Bayesian optimisation searches every double on a log-uniform scale",
    ),
    "more initial points than the budget": (
        set_algorithm_setting("n_initial_points", "9"),
        "n_initial_points=9 is more than maxTrialCount=8",
    ),
    "Katib's default of ten initial points above the budget": (
        drop_algorithm_setting("n_initial_points"),
        "n_initial_points=10 is more than maxTrialCount=8",
    ),
    "trial parameter referencing no parameter": (
        set_reference("maxDepth", "depth"),
        "spec.trialTemplate.trialParameters[0].reference: trial parameter 'maxDepth' "
        "references 'depth', which is not a parameter of the search",
    ),
    "metric the trial never prints": (
        add_metric("log_loss"),
        "spec.objective: metric 'log_loss' is never printed by `xgbflow trial`",
    ),
    "objective the trial never prints": (
        rename_objective("roc_auc"),
        "metric 'roc_auc' is never printed by `xgbflow trial`",
    ),
    "filter that cannot read the trial's lines": (
        set_filter(r"(\w+):\s*([\d.]+)"),
        "do not read the trial's lines such as 'accuracy=0.500000'; unread: "
        "accuracy, precision, recall, f1, auc",
    ),
    "filter without two groups": (
        set_filter(r"\w+=[\d.]+"),
        "has 0 groups; expected 2",
    ),
    "unsupported algorithm": (
        set_spec("algorithm", {"algorithmName": "tpe"}),
        "spec.algorithm.algorithmName: 'tpe' is not supported by the local runner; "
        "expected one of ['bayesianoptimization', 'random']",
    ),
    "unknown algorithm setting": (
        set_algorithm_setting("kappa", "1.9"),
        "unknown setting 'kappa' for bayesianoptimization",
    ),
    "acquisition function Katib does not know": (
        set_algorithm_setting("acq_func", "UCB"),
        "acq_func='UCB' is out of range; expected gp_hedge, LCB, EI, PI, EIps or PIps",
    ),
    "unsupported early stopping": (
        set_spec("earlyStopping", {"algorithmName": "hyperband"}),
        "spec.earlyStopping.algorithmName: 'hyperband' is not supported",
    ),
    "start_step below one": (
        set_spec(
            "earlyStopping.algorithmSettings", [{"name": "start_step", "value": "0"}]
        ),
        "start_step='0' is out of range; expected an integer >= 1",
    ),
    "collector other than StdOut": (
        set_spec("metricsCollectorSpec", {"collector": {"kind": "File"}}),
        "spec.metricsCollectorSpec.collector.kind: 'File' is not supported",
    ),
    "parallel trials above the budget": (
        set_spec("parallelTrialCount", 9),
        "spec.parallelTrialCount: 9 is above maxTrialCount=8",
    ),
    "no budget": (
        set_spec("maxTrialCount", None),
        "spec.maxTrialCount: None is not an integer",
    ),
    "categorical parameter": (
        lambda d: param(d, "max_depth").update(parameterType="categorical"),
        "max_depth: 'categorical' is not supported locally; expected int or double",
    ),
    "fractional bounds of an int": (
        set_bounds("n_estimators", "100.5", "1000"),
        "n_estimators: min '100.5' and max '1000' must be whole numbers",
    ),
    "placeholder without a trial parameter": (
        lambda d: d["spec"]["trialTemplate"]["trialSpec"]["spec"]["template"]["spec"][
            "containers"
        ][0]["command"].append("--seed=${trialParameters.seed}"),
        "the command uses ${trialParameters.seed}, which no trial parameter declares",
    ),
}


@pytest.mark.parametrize(("edit", "problem"), BROKEN.values(), ids=BROKEN.keys())
def test_each_broken_experiment_is_refused_naming_the_problem(
    experiment_document: dict, edit: Edit, problem: str
) -> None:
    edit(experiment_document)

    with pytest.raises(ExperimentError) as caught:
        parse_experiment(experiment_document)

    assert len(caught.value.problems) == 1, caught.value.problems
    assert problem in caught.value.problems[0]


def test_all_problems_are_reported_at_once(experiment_document: dict) -> None:
    set_bounds("max_depth", "10", "3")(experiment_document)
    set_reference("subsample", "sample_rate")(experiment_document)
    add_metric("log_loss")(experiment_document)

    with pytest.raises(ExperimentError) as caught:
        parse_experiment(experiment_document)

    assert len(caught.value.problems) == 3
    assert str(caught.value).startswith("Experiment 'xgbflow-tuning' cannot run:\n  - ")


def test_random_search_allows_a_zero_lower_bound_on_a_uniform_double(
    experiment_document: dict,
) -> None:
    set_spec("algorithm", {"algorithmName": "random"})(experiment_document)
    set_bounds("subsample", "0", "1")(experiment_document)

    experiment = parse_experiment(experiment_document)

    assert experiment.algorithm.settings == {"random_state": None}


def test_metric_strategies_default_as_katibs_webhook_does(
    experiment_document: dict,
) -> None:
    del experiment_document["spec"]["objective"]["metricStrategies"]

    strategies = parse_experiment(experiment_document).objective.strategies

    assert set(strategies.values()) == {"max"}


def test_the_command_refuses_a_broken_experiment_before_any_trial(
    experiment_document: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_bounds("learning_rate", "-0.1", "0.3")(experiment_document)
    source = tmp_path / "experiment.yaml"
    source.write_text(yaml.safe_dump(experiment_document))
    runs = tmp_path / "runs"

    status = local.main([str(source), "--runs-dir", str(runs), "--rows", "500"])

    assert status == 2
    err = capsys.readouterr().err
    assert "learning_rate: min -0.1 is not positive" in err
    assert not runs.exists()
