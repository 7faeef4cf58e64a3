"""A local tuning run in MLflow: one parent run, each trial a nested run under it.

The parent holds the search: algorithm and settings, early stopping, budget, the
search space, where the Experiment came from and, at the end, the best trial's
parameters and metrics with best-params.yaml and trials.json as artifacts. Each trial
run holds its parameters, its metrics as the Experiment's strategies extract them, the
objective after every report as a stepped series (`<objective>_reports`), its status as
a tag and its output log as an artifact. Trials are logged as they finish, so the MLflow
UI follows a run in progress.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from xgbflow.track import ensure_experiment
from xgbflow.tune import collector

if TYPE_CHECKING:
    from xgbflow.tune.experiment import Experiment
    from xgbflow.tune.local import RunResult, Trial

logger = logging.getLogger(__name__)

#: How a trial's status shows in MLflow.
RUN_STATUS = {
    "Succeeded": RunStatus.FINISHED,
    "EarlyStopped": RunStatus.KILLED,
    "Killed": RunStatus.KILLED,
    "Failed": RunStatus.FAILED,
    "MetricsUnavailable": RunStatus.FAILED,
}
BATCH = 1000


class ExperimentTracker:
    """Opens the parent run at once; trial runs are added as trials finish."""

    def __init__(
        self, experiment: Experiment, tracking_uri: str, source: str, folder: Path
    ) -> None:
        self.experiment = experiment
        self.folder = folder
        self.client = MlflowClient(tracking_uri)
        self.experiment_id = ensure_experiment(
            self.client, experiment.name, tracking_uri
        )
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        parent = self.client.create_run(
            self.experiment_id,
            run_name=f"{experiment.name}-{stamp}",
            tags={
                "xgbflow.kind": "tuning",
                "katib.algorithm": experiment.algorithm.name,
            },
        )
        self.parent_id = parent.info.run_id
        self.client.log_batch(self.parent_id, params=self._search_params(source))
        logger.info("tracking the search as MLflow run %s", self.parent_id)

    def _search_params(self, source: str) -> list[Param]:
        experiment = self.experiment
        params = {
            "source": source,
            "objective": (
                f"{'maximize' if experiment.objective.maximize else 'minimize'} "
                f"{experiment.objective.metric}"
            ),
            "algorithm": experiment.algorithm.name,
            "maxTrialCount": experiment.max_trial_count,
            "parallelTrialCount": experiment.parallel_trial_count,
            "maxFailedTrialCount": experiment.max_failed_trial_count,
        }
        params |= {
            f"algorithm.{k}": v for k, v in experiment.algorithm.settings.items()
        }
        if experiment.early_stopping is not None:
            params |= {
                f"medianstop.{k}": v
                for k, v in dataclasses.asdict(experiment.early_stopping).items()
            }
        params |= {
            f"space.{p.name}": f"{p.kind} [{p.low:g}, {p.high:g}] {p.distribution}"
            for p in experiment.parameters
        }
        return [Param(key, str(value)) for key, value in params.items()]

    def log_trial(self, trial: Trial) -> None:
        """One nested run for a finished trial."""
        objective = self.experiment.objective
        run = self.client.create_run(
            self.experiment_id,
            start_time=int(trial.started * 1000),
            run_name=trial.name,
            tags={"mlflow.parentRunId": self.parent_id, "katib.status": trial.status},
        )
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        metrics = [
            Metric(name, value, now, 0)
            for name in objective.names
            if (value := trial.metric(name, objective.strategies[name])) is not None
        ]
        reports = [log for log in trial.logs if log.name == objective.metric]
        step = 0
        for log in reports:
            value = collector.to_number(log.value)
            if value is not None:
                stamp = max(log.timestamp // 1_000_000, 0)
                metrics.append(
                    Metric(f"{objective.metric}_reports", value, stamp, step)
                )
                step += 1
        params = [Param(name, str(value)) for name, value in trial.values.items()]
        tags = [RunTag("katib.command", " ".join(trial.command))]
        self.client.log_batch(run_id, params=params, tags=tags)
        for start in range(0, len(metrics), BATCH):
            self.client.log_batch(run_id, metrics=metrics[start : start + BATCH])
        log_file = self.folder / "trials" / f"{trial.name}.log"
        if log_file.is_file():
            self.client.log_artifact(run_id, str(log_file))
        self.client.set_terminated(
            run_id,
            RunStatus.to_string(RUN_STATUS[trial.status]),
            end_time=int((trial.finished or time.time()) * 1000),
        )

    def finish(self, result: RunResult, best_file: Path | None) -> None:
        """Best parameters and metrics on the parent run, then close it."""
        best = result.best
        if best is not None:
            objective = self.experiment.objective
            self.client.log_batch(
                self.parent_id,
                params=[Param(f"best.{k}", str(v)) for k, v in best.values.items()],
                metrics=[
                    Metric(f"best_{name}", value, int(time.time() * 1000), 0)
                    for name in objective.names
                    if (value := best.metric(name, objective.strategies[name]))
                    is not None
                ],
                tags=[RunTag("best_trial", best.name)],
            )
        for artifact in (best_file, self.folder / "trials.json"):
            if artifact is not None and artifact.is_file():
                self.client.log_artifact(self.parent_id, str(artifact))
        status = RunStatus.FINISHED if result.succeeded else RunStatus.FAILED
        self.client.set_terminated(self.parent_id, RunStatus.to_string(status))
