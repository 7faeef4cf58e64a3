"""`xgbflow tune` end to end: real trials as worker processes, median stopping, MLflow.

The main run is dev's Experiment cut to a tiny budget on the shared small dataset:
five trials, two at a time, random search with a fixed seed, and medianstop judging
after two reports once one trial has succeeded. The third trial draws max_depth 1,
whose first rounds are well below the deeper trials before it, so it is stopped.
Every outcome is checked against the rule the trial was created with.

The other tests replace the trial command with a tiny Python program, to drive the
failure and goal paths without training anything.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import sys

import pytest
import yaml
from mlflow.tracking import MlflowClient

from xgbflow.tune import collector, local, report
from xgbflow.tune.experiment import parse_experiment


def tiny(document: dict) -> dict:
    spec = document["spec"]
    spec.update(maxTrialCount=5, parallelTrialCount=2, maxFailedTrialCount=1)
    spec["algorithm"] = {
        "algorithmName": "random",
        "algorithmSettings": [{"name": "random_state", "value": "6"}],
    }
    spec["earlyStopping"]["algorithmSettings"] = [
        {"name": "min_trials_required", "value": "1"},
        {"name": "start_step", "value": "2"},
    ]
    bounds = {"max_depth": ("1", "10"), "n_estimators": ("20", "60")}
    for parameter in spec["parameters"]:
        if parameter["name"] in bounds:
            low, high = bounds[parameter["name"]]
            parameter["feasibleSpace"].update(min=low, max=high)
    return document


@pytest.fixture(scope="module")
def tuning_run(rendered_experiments, small_dataset, tmp_path_factory):
    """One real run of `xgbflow tune`: its folder, tracking URI, status and output."""
    scratch = tmp_path_factory.mktemp("tuning")
    source = scratch / "experiment.yaml"
    source.write_text(yaml.safe_dump(tiny(copy.deepcopy(rendered_experiments["dev"]))))
    tracking_uri = f"sqlite:///{scratch / 'mlflow.db'}"
    capture = pytest.MonkeyPatch()
    output, progress = scratch / "stdout.txt", scratch / "stderr.txt"
    with output.open("w") as stream, progress.open("w") as errors:
        capture.setattr(sys, "stdout", stream)
        capture.setattr(sys, "stderr", errors)
        try:
            status = local.main(
                [
                    str(source),
                    f"--data-uri={small_dataset}",
                    f"--runs-dir={scratch / 'runs'}",
                    f"--tracking-uri={tracking_uri}",
                ]
            )
        finally:
            capture.undo()
    (folder,) = (scratch / "runs").iterdir()
    return {
        "folder": folder,
        "tracking_uri": tracking_uri,
        "status": status,
        "stdout": output.read_text(),
        "stderr": progress.read_text(),
        "results": json.loads((folder / "trials.json").read_text()),
    }


def test_run_spends_the_budget_with_parallel_worker_processes(tuning_run) -> None:
    results = tuning_run["results"]

    assert tuning_run["status"] == 0
    assert results["reason"] == local.BUDGET_SPENT
    assert len(results["trials"]) == 5
    first, second = (
        [dt.datetime.fromisoformat(trial[key]) for key in ("started", "finished")]
        for trial in results["trials"][:2]
    )
    # The first two ran at the same time, each in its own process.
    assert first[0] < second[1]
    assert second[0] < first[1]


def test_median_stopping_stops_the_shallow_trial_and_only_by_its_rule(
    tuning_run,
) -> None:
    trials = tuning_run["results"]["trials"]
    statuses = [trial["status"] for trial in trials]

    assert statuses[:2] == ["Succeeded", "Succeeded"]  # created before any rule
    assert trials[2]["parameters"]["max_depth"] == 1
    assert statuses[2] == "EarlyStopped"
    for trial in trials:
        rule = trial["stop_rule"]
        log = tuning_run["folder"] / "trials" / f"{trial['name']}.log"
        logs = collector.collect_logs(log.read_text().splitlines(), ["accuracy"])
        values = collector.ordered_values(logs, "accuracy")
        if rule is None:
            assert trial["status"] == "Succeeded"
            continue
        best_early = max(values[: rule["start_step"]])
        stopped = best_early < rule["threshold"]
        assert (trial["status"] == "EarlyStopped") == stopped, trial
        if stopped:
            # Terminated mid-training: never printed its final metrics.
            assert "auc=" not in log.read_text()
            assert trial["exit_code"] != 0


def test_objective_is_the_final_printed_accuracy(tuning_run) -> None:
    for trial in tuning_run["results"]["trials"]:
        if trial["status"] != "Succeeded":
            continue
        log = tuning_run["folder"] / "trials" / f"{trial['name']}.log"
        final = [line for line in log.read_text().splitlines() if "accuracy=" in line]

        assert trial["objective"] == float(final[-1].split("accuracy=")[1])
        assert trial["metrics"]["auc"]["latest"] != collector.UNAVAILABLE


def test_best_params_file_holds_the_best_succeeded_trial(tuning_run) -> None:
    results = tuning_run["results"]
    succeeded = [t for t in results["trials"] if t["status"] == "Succeeded"]
    best = max(succeeded, key=lambda trial: trial["objective"])

    params = yaml.safe_load((tuning_run["folder"] / "best-params.yaml").read_text())

    assert results["best"] == best["name"]
    assert params == best["parameters"]
    assert list(params) == [
        "max_depth",
        "learning_rate",
        "n_estimators",
        "min_child_weight",
        "subsample",
    ]


def test_table_lists_every_trial_and_marks_the_best(tuning_run) -> None:
    stdout = tuning_run["stdout"]
    best = tuning_run["results"]["best"]

    assert f"*{best}  Succeeded" in stdout
    for trial in tuning_run["results"]["trials"]:
        assert trial["name"] in stdout
    assert "5 trials (4 Succeeded, 1 EarlyStopped)" in stdout


def test_progress_shows_each_trial_start_rule_and_end(tuning_run) -> None:
    lines = tuning_run["stderr"].splitlines()
    third = "xgbflow-tuning-003"

    started = [line for line in lines if line.startswith(f"started  {third}:")]
    finished = [line for line in lines if line.startswith(f"finished {third}:")]

    assert len(started) == 1
    assert "max_depth 1," in started[0]
    assert "stops if best accuracy by report 2 is below 0." in started[0]
    assert len(finished) == 1
    assert "EarlyStopped, accuracy 0." in finished[0]


def test_a_terminal_gets_a_status_line_redrawn_in_place(
    experiment_document: dict,
) -> None:
    experiment = parse_experiment(experiment_document)
    values = {"max_depth": 4, "learning_rate": 0.1, "n_estimators": 200}
    values |= {"min_child_weight": 1, "subsample": 0.8}
    done = local.Trial(1, "t-001", values, [], None, status="Succeeded", objective=0.93)
    running = local.Trial(2, "t-002", values, [], None, reports=57, latest=0.9112)
    stream = io.StringIO()
    progress = report.Progress(experiment, stream, live=True)

    progress.refresh([done, running], done)
    progress.finished(done, done)

    shown = stream.getvalue()
    assert shown.startswith(
        "\r\033[K1/8 done | 1 running | best accuracy 0.9300 | #2 report 57 0.9112"
    )
    # An event line first clears the status line, so the two never mix.
    assert "\r\033[Kfinished t-001: Succeeded" in shown


def test_each_trial_is_a_nested_mlflow_run(tuning_run) -> None:
    client = MlflowClient(tuning_run["tracking_uri"])
    experiment = client.get_experiment_by_name("xgbflow-tuning")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    children = [run for run in runs if run is not parent]
    trials = {t["name"]: t for t in tuning_run["results"]["trials"]}

    assert sorted(run.info.run_name for run in children) == sorted(trials)
    assert {run.data.tags["mlflow.parentRunId"] for run in children} == {
        parent.info.run_id
    }
    for run in children:
        trial = trials[run.info.run_name]
        assert run.data.tags["katib.status"] == trial["status"]
        assert run.data.params["max_depth"] == str(trial["parameters"]["max_depth"])
        history = client.get_metric_history(run.info.run_id, "accuracy_reports")
        assert len(history) == trial["reports"]
    assert parent.data.tags["best_trial"] == tuning_run["results"]["best"]
    assert parent.data.params["algorithm"] == "random"
    assert parent.info.status == "FINISHED"


FAKE_TRIAL = """
import sys
depth = int(sys.argv[1])
for step in range(3):
    print(f"2026-01-01T00:00:0{step}Z accuracy={depth / 10:.6f}", flush=True)
sys.exit(int(sys.argv[2]))
"""


def fake(document: dict, exit_code: str, **spec) -> dict:
    """The Experiment with a trial that prints max_depth/10 three times, then exits."""
    document["spec"].update(spec)
    template = document["spec"]["trialTemplate"]
    template["trialParameters"] = template["trialParameters"][:1]
    (container,) = template["trialSpec"]["spec"]["template"]["spec"]["containers"]
    container["command"] = [
        sys.executable,
        "-c",
        FAKE_TRIAL,
        "${trialParameters.maxDepth}",
        exit_code,
    ]
    document["spec"]["earlyStopping"] = None
    document["spec"]["objective"]["additionalMetricNames"] = []
    document["spec"]["objective"]["metricStrategies"] = []
    return document


def run_fake(document: dict) -> local.RunResult:
    experiment = parse_experiment(document)
    return local.ExperimentRun(
        experiment, local.SubprocessLauncher(), refresh_seconds=0.05
    ).run()


def test_failed_trials_end_the_run_at_max_failed_trial_count(
    experiment_document: dict,
) -> None:
    document = fake(
        experiment_document, "1", maxFailedTrialCount=2, parallelTrialCount=1
    )

    result = run_fake(document)

    assert [t.status for t in result.trials] == ["Failed", "Failed"]
    assert result.reason == "2 trials failed (maxFailedTrialCount 2)"
    assert not result.succeeded


def test_a_trial_without_its_objective_is_metrics_unavailable(
    experiment_document: dict,
) -> None:
    document = fake(
        experiment_document, "0", maxFailedTrialCount=1, parallelTrialCount=1
    )
    objective = document["spec"]["objective"]
    objective["objectiveMetricName"] = "f1"

    result = run_fake(document)

    assert [t.status for t in result.trials] == ["MetricsUnavailable"]
    assert result.best is None


def test_reaching_the_goal_ends_the_run(experiment_document: dict) -> None:
    document = fake(experiment_document, "0", parallelTrialCount=1)
    document["spec"]["objective"]["goal"] = 0.3

    result = run_fake(document)

    assert result.reason == local.GOAL_REACHED
    assert result.best.objective >= 0.3
    assert len(result.trials) == 1
