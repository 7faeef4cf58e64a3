"""`xgbflow tune`: run the Katib Experiment of an overlay on this machine.

The overlay is rendered with `kustomize build`, its Experiment checked (see
xgbflow.tune.experiment) and then run the way Katib runs it:

- trials are created while fewer than parallelTrialCount run and fewer than
  maxTrialCount exist, each from the search algorithm's suggestion and, with
  medianstop, with the stopping rule of that moment;
- each trial is the primary container's command with `${trialParameters.*}`
  substituted, run as its own process; the only addition is where its data is;
- its combined stdout and stderr are read line by line as Katib's StdOut collector
  reads them, and the process is terminated when its stopping rule is reached;
- the run ends when the objective's goal is reached, when failed trials (failed, or
  without the objective metric) reach maxFailedTrialCount, or when maxTrialCount
  trials have finished; trials still running then are killed.

The data every trial uses is generated once (the trial's own default unless --rows or
--seed say otherwise) or given with --data-uri, and passed as `--data-uri=`. Results go
to runs/tuning/<experiment>-<time>/: one log per trial, trials.json, the rendered
Experiment and best-params.yaml, which `xgbflow promote-params` writes into an overlay.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import yaml

from xgbflow.errors import XgbflowError
from xgbflow.tune import collector, report, stopping, suggest
from xgbflow.tune import trial as trial_program
from xgbflow.tune.experiment import (
    Experiment,
    find_experiment,
    parse_experiment,
    render_objects,
)

logger = logging.getLogger(__name__)

DEFAULT_OVERLAY = Path("overlays/dev")
DEFAULT_RUNS = Path("runs/tuning")
SUCCEEDED = "Succeeded"
FAILED = "Failed"
EARLY_STOPPED = "EarlyStopped"
METRICS_UNAVAILABLE = "MetricsUnavailable"
KILLED = "Killed"
RUNNING = "Running"
GOAL_REACHED = "the objective reached its goal"
BUDGET_SPENT = "maxTrialCount trials finished"
#: Seconds a trial gets to exit after SIGTERM before it is killed outright.
TERMINATE_GRACE = 10.0


@dataclass
class Trial:
    """One trial: what it was given, what it printed, how it ended."""

    index: int
    name: str
    values: dict[str, int | float]
    command: list[str]
    rule: stopping.StopRule | None
    status: str = RUNNING
    logs: list[collector.MetricLog] = field(default_factory=list)
    reports: int = 0
    latest: float | None = None
    exit_code: int | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    stop_requested: bool = False
    kill_requested: bool = False
    summary: dict[str, collector.MetricSummary] = field(default_factory=dict)
    objective: float | None = None

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started

    def metric(self, name: str, strategy: str) -> float | None:
        summary = self.summary.get(name)
        return None if summary is None else summary.value(strategy)


class Launcher(Protocol):
    """Runs one trial to its end, handing each output line to `on_line`.

    `on_line` returns True when the trial must stop; `run` then ends the trial and
    returns its exit code. `stop` ends a running trial from another thread.
    """

    def run(self, trial: Trial, on_line: Callable[[str], bool]) -> int: ...

    def stop(self, trial: Trial) -> None: ...


class SubprocessLauncher:
    """Each trial is its command in a child process, stderr merged into stdout.

    `threads` caps each trial's OpenMP threads (unless OMP_NUM_THREADS is already
    set): parallel trials that each spin up a thread per core slow one another down
    several times over, as a pod's CPU limit would prevent in the cluster.
    """

    def __init__(
        self,
        extra_args: Sequence[str] = (),
        log_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        self.extra_args = list(extra_args)
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen] = {}
        self.stopping: set[str] = set()
        self.lock = threading.Lock()
        # `xgbflow` in the template resolves to this environment's command.
        bin_dir = str(Path(sys.executable).parent)
        self.env = os.environ | {
            "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
            "PYTHONUNBUFFERED": "1",
        }
        if threads is not None and "OMP_NUM_THREADS" not in os.environ:
            self.env["OMP_NUM_THREADS"] = str(threads)

    def command(self, trial: Trial) -> list[str]:
        return [*trial.command, *self.extra_args]

    def run(self, trial: Trial, on_line: Callable[[str], bool]) -> int:
        log_path = None
        if self.log_dir is not None:
            log_path = self.log_dir / f"{trial.name}.log"
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(log_path.open("w")) if log_path else None
            try:
                process = stack.enter_context(
                    subprocess.Popen(
                        self.command(trial),
                        stdout=subprocess.PIPE,
                        stderr=subprocess.STDOUT,
                        text=True,
                        bufsize=1,
                        env=self.env,
                    )
                )
            except OSError as exc:
                if log is not None:
                    log.write(f"could not start {self.command(trial)}: {exc}\n")
                return 127
            with self.lock:
                self.processes[trial.name] = process
            if trial.kill_requested:  # the run ended while this one was starting
                self.stop(trial)
            try:
                for line in process.stdout:
                    if log is not None:
                        log.write(line)
                        log.flush()
                    if on_line(line):
                        self.stop(trial)
                return process.wait()
            finally:
                with self.lock:
                    self.processes.pop(trial.name, None)

    def stop(self, trial: Trial) -> None:
        with self.lock:
            process = self.processes.get(trial.name)
            if process is None or trial.name in self.stopping:
                return
            self.stopping.add(trial.name)
        if process.poll() is not None:
            return
        process.terminate()
        timer = threading.Timer(TERMINATE_GRACE, _kill_if_alive, [process])
        timer.daemon = True
        timer.start()


def _kill_if_alive(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()


@dataclass
class RunResult:
    """The trials in creation order, why the run ended, and the best trial."""

    experiment: Experiment
    trials: list[Trial]
    reason: str
    best: Trial | None

    def count(self, *statuses: str) -> int:
        return sum(trial.status in statuses for trial in self.trials)

    @property
    def succeeded(self) -> bool:
        """As Katib would mark the Experiment: budget spent or goal reached."""
        return self.best is not None and self.reason in {BUDGET_SPENT, GOAL_REACHED}


class ExperimentRun:
    """Katib's experiment loop for one Experiment, on one machine."""

    def __init__(
        self,
        experiment: Experiment,
        launcher: Launcher,
        *,
        progress: report.Progress | None = None,
        on_finished: Callable[[Trial], None] | None = None,
        refresh_seconds: float = 1.0,
    ) -> None:
        self.experiment = experiment
        self.launcher = launcher
        self.progress = progress
        self.on_finished = on_finished
        self.refresh_seconds = refresh_seconds
        self.suggester = suggest.build_suggester(experiment)
        self.patterns = collector.compile_filters(experiment.filters)
        self.trials: list[Trial] = []
        self.running: dict[str, tuple[Trial, threading.Thread]] = {}
        self.done: queue.Queue[Trial] = queue.Queue()

    def succeeded(self) -> list[Trial]:
        return [t for t in self.trials if t.status == SUCCEEDED]

    def best(self) -> Trial | None:
        """The succeeded trial with the best objective; the first wins a tie."""
        best = None
        for candidate in self.succeeded():
            if best is None or self.experiment.objective.is_better(
                candidate.objective, best.objective
            ):
                best = candidate
        return best

    def end_reason(self) -> str | None:
        """Why the run is over now, or None; Katib's order of checks."""
        experiment = self.experiment
        goal = experiment.objective.goal
        best = self.best()
        if goal is not None and best is not None:
            reached = (
                best.objective >= goal
                if experiment.objective.maximize
                else best.objective <= goal
            )
            if reached:
                return GOAL_REACHED
        failed = sum(t.status in {FAILED, METRICS_UNAVAILABLE} for t in self.trials)
        limit = experiment.max_failed_trial_count
        if limit is not None and failed and failed >= limit:
            return f"{failed} trials failed (maxFailedTrialCount {limit})"
        finished = sum(t.status != RUNNING for t in self.trials)
        if finished >= experiment.max_trial_count:
            return BUDGET_SPENT
        return None

    def stop_rule(self) -> stopping.StopRule | None:
        settings = self.experiment.early_stopping
        if settings is None:
            return None
        metric = self.experiment.objective.metric
        return stopping.stop_rule(
            settings,
            metric,
            self.experiment.objective.maximize,
            [collector.ordered_values(t.logs, metric) for t in self.succeeded()],
        )

    def launch(self) -> None:
        free = self.experiment.parallel_trial_count - len(self.running)
        left = self.experiment.max_trial_count - len(self.trials)
        count = min(free, left)
        if count <= 0:
            return
        # Katib v0.19.0 sends its suggestion service the succeeded and the
        # early-stopped trials, the latter with the value they had reached.
        observations = [
            suggest.Observation(t.name, t.values, t.objective)
            for t in self.trials
            if t.status in {SUCCEEDED, EARLY_STOPPED} and t.objective is not None
        ]
        rule = self.stop_rule()
        for values in self.suggester.suggest(observations, count):
            index = len(self.trials) + 1
            texts = {
                p.name: p.format_value(values[p.name])
                for p in self.experiment.parameters
            }
            new = Trial(
                index=index,
                name=f"{self.experiment.name}-{index:03d}",
                values=values,
                command=self.experiment.template.command_for(texts),
                rule=rule,
            )
            self.trials.append(new)
            worker = threading.Thread(
                target=self._execute, args=(new,), name=new.name, daemon=True
            )
            self.running[new.name] = (new, worker)
            if self.progress:
                self.progress.started(new)
            worker.start()

    def _execute(self, trial: Trial) -> None:
        """Worker thread: run the trial, then settle its status and observation."""
        names = self.experiment.objective.names
        objective = self.experiment.objective.metric
        watcher = stopping.RuleWatcher(trial.rule) if trial.rule else None

        def on_line(line: str) -> bool:
            found = collector.parse_line(line.rstrip("\r\n"), names, self.patterns)
            trial.logs.extend(found)
            for log in found:
                if log.name != objective:
                    continue
                value = collector.to_number(log.value)
                if value is None:
                    continue
                trial.reports += 1
                trial.latest = value
                if watcher is not None and watcher.observe(value):
                    trial.stop_requested = True
            return trial.stop_requested or trial.kill_requested

        try:
            trial.exit_code = self.launcher.run(trial, on_line)
        except Exception:
            logger.exception("trial %s could not be run", trial.name)
            trial.exit_code = -1
        finally:
            self.done.put(trial)

    def settle(self, trial: Trial) -> None:
        """Status, observation and objective of a trial whose process has ended."""
        trial.finished = time.time()
        objective = self.experiment.objective
        logs = trial.logs
        if not any(log.name == objective.metric for log in logs):
            logs = collector.collect_logs([], objective.names)
        trial.summary = collector.summarize(logs, objective.names)
        trial.objective = trial.metric(
            objective.metric, objective.strategies[objective.metric]
        )
        if trial.kill_requested:
            trial.status = KILLED
        elif trial.stop_requested:
            trial.status = EARLY_STOPPED
        elif trial.exit_code != 0:
            trial.status = FAILED
        elif trial.objective is None:
            trial.status = METRICS_UNAVAILABLE
        else:
            trial.status = SUCCEEDED

    def kill_running(self) -> None:
        for trial, _ in list(self.running.values()):
            trial.kill_requested = True
            self.launcher.stop(trial)

    def wait_one(self, timeout: float) -> None:
        try:
            finished = self.done.get(timeout=timeout)
        except queue.Empty:
            if self.progress:
                self.progress.refresh(self.trials, self.best())
            return
        _, worker = self.running.pop(finished.name)
        worker.join()
        self.settle(finished)
        if self.progress:
            self.progress.finished(finished, self.best())
        if self.on_finished:
            self.on_finished(finished)

    def run(self) -> RunResult:
        reason = None
        try:
            while True:
                reason = reason or self.end_reason()
                if reason is not None:
                    self.kill_running()
                    if not self.running:
                        break
                else:
                    self.launch()
                    if not self.running:
                        reason = "no trial could be started"
                        break
                self.wait_one(self.refresh_seconds)
        except KeyboardInterrupt:
            reason = "interrupted"
            self.kill_running()
            while self.running:
                self.wait_one(self.refresh_seconds)
        return RunResult(self.experiment, self.trials, reason, self.best())


def trial_to_dict(trial: Trial) -> dict:
    return {
        "name": trial.name,
        "status": trial.status,
        "parameters": trial.values,
        "command": trial.command,
        "objective": trial.objective,
        "metrics": {
            name: {"min": s.min, "max": s.max, "latest": s.latest}
            for name, s in trial.summary.items()
        },
        "reports": trial.reports,
        "exit_code": trial.exit_code,
        "started": _iso(trial.started),
        "finished": _iso(trial.finished) if trial.finished else None,
        "seconds": round(trial.seconds, 3),
        "stop_rule": dataclasses.asdict(trial.rule) if trial.rule else None,
    }


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat()


def write_results(result: RunResult, folder: Path) -> None:
    content = {
        "experiment": result.experiment.name,
        "algorithm": result.experiment.algorithm.name,
        "reason": result.reason,
        "best": result.best.name if result.best else None,
        "trials": [trial_to_dict(t) for t in result.trials],
    }
    (folder / "trials.json").write_text(json.dumps(content, indent=2))


def threads_per_trial(experiment: Experiment) -> int:
    """This machine's cores shared out among the parallel trials, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return max(1, (cores or os.cpu_count() or 1) // experiment.parallel_trial_count)


def prepare_data(args: argparse.Namespace, folder: Path) -> list[str]:
    """The arguments that tell every trial where its data is."""
    if args.data_uri:
        uri = args.data_uri
        if "://" not in uri:
            uri = str(Path(uri).resolve())
        extra = [f"--data-uri={uri}"]
    else:
        from xgbflow import generate

        data_dir = folder / "data"
        config = generate.GeneratorConfig(n_rows=args.rows, seed=args.seed)
        logger.info("generating %d rows (seed %d) for the trials", args.rows, args.seed)
        generate.generate_dataset(str(data_dir), config)
        extra = [f"--data-uri={data_dir.resolve()}"]
    if args.seed != trial_program.DEFAULT_SEED:
        extra.append(f"--seed={args.seed}")
    return extra


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xgbflow tune",
        description="Run an overlay's Katib Experiment on this machine.",
    )
    parser.add_argument(
        "source",
        nargs="?",
        type=Path,
        default=DEFAULT_OVERLAY,
        help="overlay to render (default overlays/dev), or a rendered YAML file",
    )
    data = parser.add_argument_group("data every trial uses")
    data.add_argument("--data-uri", default="", help="a dataset directory or file")
    data.add_argument(
        "--rows",
        type=int,
        default=trial_program.DEFAULT_ROWS,
        help="synthetic rows (default: what a trial generates on its own)",
    )
    data.add_argument("--seed", type=int, default=trial_program.DEFAULT_SEED)
    where = parser.add_argument_group("where")
    where.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS)
    where.add_argument("--tracking-uri", default="", help="MLflow tracking URI")
    where.add_argument("--kustomize", default="", help="kustomize binary")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

    from xgbflow.config import resolve_tracking_uri
    from xgbflow.tune import tracking

    try:
        document = find_experiment(
            render_objects(args.source, args.kustomize), args.source
        )
        experiment = parse_experiment(document)
        if args.rows < 1:
            raise XgbflowError(f"--rows {args.rows} is not positive; expected >= 1")
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        folder = (args.runs_dir / f"{experiment.name}-{stamp}").resolve()
        (folder / "trials").mkdir(parents=True)
        (folder / "experiment.yaml").write_text(
            yaml.safe_dump(document, sort_keys=False)
        )
        extra = prepare_data(args, folder)
        tracker = tracking.ExperimentTracker(
            experiment,
            resolve_tracking_uri(args.tracking_uri),
            source=str(args.source),
            folder=folder,
        )
    except XgbflowError as exc:
        print(f"xgbflow tune: {exc}", file=sys.stderr)
        return 2

    launcher = SubprocessLauncher(
        extra, log_dir=folder / "trials", threads=threads_per_trial(experiment)
    )
    progress = report.Progress(experiment, sys.stderr)
    run = ExperimentRun(
        experiment, launcher, progress=progress, on_finished=tracker.log_trial
    )
    result = run.run()

    write_results(result, folder)
    best_file = folder / "best-params.yaml"
    if result.best is not None:
        report.write_best_params(best_file, experiment, result.best, str(args.source))
        tracker.finish(result, best_file)
    else:
        tracker.finish(result, None)
    print(report.format_table(result))
    print(report.format_summary(result, folder, best_file if result.best else None))
    return 0 if result.succeeded else 1
