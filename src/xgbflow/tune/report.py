"""What a local tuning run shows and leaves behind for people.

- Progress: a line when a trial starts and when it ends; on a terminal, also a status
  line redrawn in place with the counts, the best value and each running trial's
  latest objective report.
- The table of trials when the run ends, best trial marked, and a summary.
- best-params.yaml: the best trial's parameters as a flat mapping whose keys are the
  pipeline's parameter names, ready for `xgbflow promote-params`.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import yaml

if TYPE_CHECKING:
    from xgbflow.tune.experiment import Experiment, Parameter
    from xgbflow.tune.local import RunResult, Trial

BEST_PARAMS_FILE = "best-params.yaml"


def format_value(parameter: Parameter, value: float) -> str:
    """Ints as they are, doubles to four significant digits (display only)."""
    return str(int(value)) if parameter.kind == "int" else f"{value:.4g}"


def format_objective(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class Progress:
    """Trial events as lines; a live status line when the stream is a terminal."""

    def __init__(
        self,
        experiment: Experiment,
        stream: TextIO = sys.stderr,
        live: bool | None = None,
    ) -> None:
        self.experiment = experiment
        self.stream = stream
        self.live = stream.isatty() if live is None else live
        self.metric = experiment.objective.metric
        self._status_shown = False

    def _line(self, text: str) -> None:
        if self._status_shown:
            self.stream.write("\r\033[K")
            self._status_shown = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def started(self, trial: Trial) -> None:
        values = ", ".join(
            f"{p.name} {format_value(p, trial.values[p.name])}"
            for p in self.experiment.parameters
        )
        rule = ""
        if trial.rule is not None:
            rule = (
                f"; stops if best {self.metric} by report {trial.rule.start_step} "
                f"is {'below' if trial.rule.maximize else 'above'} "
                f"{trial.rule.threshold:.4f}"
            )
        self._line(f"started  {trial.name}: {values}{rule}")

    def finished(self, trial: Trial, best: Trial | None) -> None:
        self._line(
            f"finished {trial.name}: {trial.status}, {self.metric} "
            f"{format_objective(trial.objective)} after {trial.reports} reports "
            f"in {trial.seconds:.0f} s; best so far "
            f"{format_objective(best.objective if best else None)}"
        )

    def refresh(self, trials: Sequence[Trial], best: Trial | None) -> None:
        if not self.live:
            return
        running = [t for t in trials if t.status == "Running"]
        done = len(trials) - len(running)
        parts = [
            f"{done}/{self.experiment.max_trial_count} done",
            f"{len(running)} running",
            f"best {self.metric} {format_objective(best.objective if best else None)}",
        ]
        parts += [
            f"#{t.index} report {t.reports} {format_objective(t.latest)}"
            for t in running
        ]
        self.stream.write("\r\033[K" + " | ".join(parts))
        self.stream.flush()
        self._status_shown = True


def format_table(result: RunResult) -> str:
    """Every trial with its parameters, status, objective and reports; best marked."""
    experiment = result.experiment
    headers = [
        "trial",
        "status",
        *(p.name for p in experiment.parameters),
        experiment.objective.metric,
        "reports",
        "seconds",
    ]
    rows = []
    for trial in result.trials:
        mark = "*" if result.best is trial else " "
        rows.append(
            [
                f"{mark}{trial.name}",
                trial.status,
                *(format_value(p, trial.values[p.name]) for p in experiment.parameters),
                format_objective(trial.objective),
                str(trial.reports),
                f"{trial.seconds:.0f}",
            ]
        )
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in [headers, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def format_summary(result: RunResult, folder: Path, best_file: Path | None) -> str:
    statuses = ("Succeeded", "EarlyStopped", "Failed", "MetricsUnavailable", "Killed")
    counts = ", ".join(
        f"{result.count(status)} {status}"
        for status in statuses
        if result.count(status)
    )
    lines = [
        "",
        f"{len(result.trials)} trials ({counts}); ended because {result.reason}.",
        f"trial logs and trials.json: {folder}",
    ]
    if result.best is not None and best_file is not None:
        lines.append(
            f"best: {result.best.name}, {result.experiment.objective.metric} "
            f"{result.best.objective:.6f}; parameters in {best_file}"
        )
    else:
        lines.append("no trial succeeded, so there are no best parameters")
    return "\n".join(lines)


def best_params(experiment: Experiment, best: Trial) -> dict[str, int | float]:
    """The best trial's values, typed, keyed by the pipeline's parameter names."""
    return {
        p.name: int(best.values[p.name])
        if p.kind == "int"
        else float(best.values[p.name])
        for p in experiment.parameters
    }


def write_best_params(
    path: Path, experiment: Experiment, best: Trial, source: str
) -> None:
    """The best parameters as a flat YAML mapping, with where they came from."""
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    header = (
        f"# Best trial {best.name} of Experiment {experiment.name} ({source}), "
        f"{today}:\n"
        f"# {experiment.objective.metric} {best.objective:.6f} "
        f"({'maximize' if experiment.objective.maximize else 'minimize'}, "
        f"{experiment.algorithm.name}). Keys are pipeline parameter names.\n"
    )
    body = yaml.safe_dump(best_params(experiment, best), sort_keys=False)
    path.write_text(header + body)
