"""Bayesian optimisation against random search on the Experiment's own search space.

    .venv/bin/python -m benchmarks.tuning.run            # writes RESULTS.md beside it

For each seed, the overlay's Experiment runs twice through the local runner's engine
(xgbflow.tune.local.ExperimentRun): once with its Bayesian optimisation settings and
`random_state` set to the seed, once as random search with the same seed. Both keep the
Experiment's medianstop settings and run one trial at a time, so a run depends only on
its seed. Each trial is the template's own command, parsed by the trial program's own
argument parser and trained by its `run_trial` on data generated once; it runs in this
process rather than as a child process, which would spend about as long importing
pandas, scikit-learn and XGBoost as training, but its printed lines go through the same
collector parsing and stopping rule.

Measured per seed:
- the best accuracy found by either algorithm (succeeded trials only), and for each
  algorithm the number of trials it spent (every trial counts, stopped ones too) until
  a succeeded trial came within `--tolerance` (0.002, i.e. 0.2 points) of that best;
- for every early-stopped trial, the boosting rounds it ran and the rounds the same
  trial runs when nothing stops it (re-run in full), and whether that full run would
  have beaten the run's best.

RESULTS.md gets the median and spread over the seeds, the machine and the date;
results.json keeps every trial.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.machine import describe_machine
from xgbflow import dataset, generate
from xgbflow.tune import local, trial
from xgbflow.tune.experiment import Algorithm, Experiment, load_experiment

logger = logging.getLogger("benchmarks.tuning")

HERE = Path(__file__).resolve().parent
ALGORITHMS = ("bayesianoptimization", "random")


class TrialStoppedError(Exception):
    """Raised inside training when the collector side says the trial must end."""


class _LineSink:
    """A text stream that hands each complete line to the collector callback."""

    def __init__(self, on_line: Callable[[str], bool], halted: Callable[[], bool]):
        self.on_line = on_line
        self.halted = halted

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if self.on_line(line + "\n") or self.halted():
                raise TrialStoppedError
        return len(text)

    def flush(self) -> None:
        return None


class InProcessLauncher:
    """Runs a trial's command through the trial program's parser and `run_trial`."""

    def __init__(self, table, schema) -> None:
        self.table = table
        self.schema = schema
        self.halted: set[str] = set()

    def run(self, job: local.Trial, on_line: Callable[[str], bool]) -> int:
        if job.command[:2] != ["xgbflow", "trial"]:
            raise ValueError(f"expected an `xgbflow trial` command, got {job.command}")
        params = trial.trial_params(trial.build_parser().parse_args(job.command[2:]))
        sink = _LineSink(on_line, lambda: job.name in self.halted)
        try:
            trial.run_trial(self.table, self.schema, params, trial.MetricWriter(sink))
        except TrialStoppedError:
            return -15  # as if the collector had sent SIGTERM
        return 0

    def stop(self, job: local.Trial) -> None:
        self.halted.add(job.name)


def full_rounds(launcher: InProcessLauncher, job: local.Trial) -> tuple[int, float]:
    """Boosting rounds and final accuracy of the trial's command run to its end."""
    lines: list[str] = []

    def keep(line: str) -> bool:
        lines.append(line)
        return False

    launcher.run(job, keep)
    accuracy = [line for line in lines if f" {trial.OBJECTIVE}=" in line]
    return len(accuracy) - 1, float(accuracy[-1].split("=")[1])


def variant(base: Experiment, algorithm: str, seed: int, trials: int) -> Experiment:
    """The Experiment with one algorithm and seed, `trials` trials, one at a time."""
    if algorithm == "random":
        chosen = Algorithm("random", {"random_state": seed})
    else:
        chosen = Algorithm(
            base.algorithm.name, {**base.algorithm.settings, "random_state": seed}
        )
    return dataclasses.replace(
        base, algorithm=chosen, max_trial_count=trials, parallel_trial_count=1
    )


def run_one(experiment: Experiment, launcher: InProcessLauncher, cache: dict) -> dict:
    started = time.monotonic()
    result = local.ExperimentRun(experiment, launcher, refresh_seconds=0.01).run()
    best = max(
        (t.objective for t in result.trials if t.status == local.SUCCEEDED),
        default=None,
    )
    trials = []
    for job in result.trials:
        record = {
            "index": job.index,
            "status": job.status,
            "parameters": job.values,
            "objective": job.objective,
            "reports": job.reports,
        }
        if job.status == local.SUCCEEDED:
            record["rounds"] = job.reports - 1  # the last report is the final value
        elif job.status == local.EARLY_STOPPED:
            key = tuple(job.command)
            if key not in cache:
                cache[key] = full_rounds(launcher, job)
            rounds, accuracy = cache[key]
            record |= {
                "rounds": job.reports,
                "full_rounds": rounds,
                "full_objective": accuracy,
                "would_have_beaten_best": best is not None and accuracy > best,
            }
        trials.append(record)
    return {
        "algorithm": experiment.algorithm.name,
        "settings": dict(experiment.algorithm.settings),
        "best": best,
        "seconds": round(time.monotonic() - started, 1),
        "trials": trials,
    }


def trials_to_target(run: dict, target: float) -> int | None:
    """1-based count of trials spent until a succeeded one reached the target."""
    for record in run["trials"]:
        if record["status"] == local.SUCCEEDED and record["objective"] >= target:
            return record["index"]
    return None


def spread(values: list[float]) -> str:
    ordered = sorted(values)
    if len(ordered) < 2:
        return f"{ordered[0]:g} (one seed)"
    quartiles = statistics.quantiles(ordered, n=4, method="inclusive")
    return (
        f"median {statistics.median(ordered):g}, "
        f"IQR {quartiles[0]:g}-{quartiles[2]:g}, range {ordered[0]:g}-{ordered[-1]:g}"
    )


def summarize(runs: list[dict], trials: int, tolerance: float) -> dict:
    per_seed = []
    for seed in sorted({run["seed"] for run in runs}):
        pair = {run["algorithm"]: run for run in runs if run["seed"] == seed}
        best = max(run["best"] for run in pair.values() if run["best"] is not None)
        counts = {
            name: trials_to_target(run, best - tolerance) for name, run in pair.items()
        }
        per_seed.append({"seed": seed, "best": best, "trials_to_target": counts})

    # A run that never reached the target counts as one trial past the budget.
    censored = {
        name: [row["trials_to_target"][name] or trials + 1 for row in per_seed]
        for name in ALGORITHMS
    }
    stopped = [
        t for run in runs for t in run["trials"] if t["status"] == local.EARLY_STOPPED
    ]
    ran = sum(t.get("rounds", 0) for run in runs for t in run["trials"])
    saved = sum(t["full_rounds"] - t["rounds"] for t in stopped)
    return {
        "per_seed": per_seed,
        "trials_to_target": censored,
        "never_reached": {
            name: sum(row["trials_to_target"][name] is None for row in per_seed)
            for name in ALGORITHMS
        },
        "median_ratio": statistics.median(censored["bayesianoptimization"])
        / statistics.median(censored["random"]),
        "early_stopped": len(stopped),
        "trials": sum(len(run["trials"]) for run in runs),
        "rounds_run": ran,
        "rounds_saved": saved,
        "stopped_would_have_won": sum(t["would_have_beaten_best"] for t in stopped),
    }


def write_markdown(path: Path, context: dict, summary: dict) -> None:
    info = context["machine"]
    experiment = context["experiment"]
    lines = [
        "# Tuning benchmark: Bayesian optimisation against random search",
        "",
        f"Run on {context['date']} with `{context['command']}` "
        f"({context['minutes']:.1f} minutes).",
        "",
        f"Machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory_gib']} GiB "
        f"memory, Python {info['python']}; load average "
        f"{info['load_average'][0]:.1f} at the start (the machine is shared).",
        "",
        "## Setup",
        "",
        f"- Search space, early stopping and Bayesian settings: the Experiment of "
        f"`{context['overlay']}` ({experiment['parameters']}); medianstop "
        f"{experiment['early_stopping'] or 'off'}; Bayesian optimisation "
        f"{experiment['bayesian']}.",
        f"- {context['trials']} trials per run, one at a time, {context['seeds']} "
        "seeds; each seed is the `random_state` of both algorithms.",
        "- Data: the default synthetic generator (seed 42) at "
        f"{context['rows']:,} rows instead of 100,000, so the benchmark fits in about "
        "25 minutes on 2 shared cores; the split is the pipeline's, scores are "
        f"validation accuracy on {context['validation_rows']:,} rows.",
        f"- Target: within {context['tolerance'] * 100:.1f} accuracy points of the "
        "best accuracy either algorithm found for that seed. Every trial counts "
        "toward the number spent, early-stopped ones too; a run that never reaches "
        "the target "
        f"counts as {context['trials'] + 1}.",
        "",
        "## Trials to reach the target",
        "",
        "| seed | best accuracy | Bayesian optimisation | random search |",
        "|---:|---:|---:|---:|",
    ]
    for row in summary["per_seed"]:
        counts = row["trials_to_target"]
        lines.append(
            f"| {row['seed']} | {row['best']:.4f} | "
            f"{counts['bayesianoptimization'] or 'not reached'} | "
            f"{counts['random'] or 'not reached'} |"
        )
    bayes = summary["trials_to_target"]["bayesianoptimization"]
    rand = summary["trials_to_target"]["random"]
    verdict = "met" if summary["median_ratio"] <= 0.5 else "not met"
    would_run = summary["rounds_run"] + summary["rounds_saved"]
    saved_share = summary["rounds_saved"] / max(1, would_run)
    lines += [
        "",
        f"- Bayesian optimisation: {spread(bayes)} trials "
        f"(not reached within the budget for "
        f"{summary['never_reached']['bayesianoptimization']} seeds).",
        f"- Random search: {spread(rand)} trials "
        f"(not reached within the budget for {summary['never_reached']['random']} "
        "seeds).",
        f"- Ratio of medians: {summary['median_ratio']:.2f}. The target of at most "
        f"half the trials of random search is **{verdict}** on this run.",
        "",
        "## Median stopping",
        "",
    ]
    if experiment["early_stopping"] is None:
        lines.append(
            f"Off in this run (--without-early-stopping); {summary['rounds_run']:,} "
            "boosting rounds were run."
        )
    else:
        lines += [
            f"- {summary['early_stopped']} of {summary['trials']} trials were stopped "
            "early.",
            f"- Boosting rounds run: {summary['rounds_run']:,}; the stopped trials, "
            f"re-run without stopping, would have run {summary['rounds_saved']:,} "
            f"more, so median stopping saved {saved_share:.0%} of the rounds.",
            "- Stopped trials whose full run would have beaten their run's best: "
            f"{summary['stopped_would_have_won']}.",
        ]
    lines += ["", "Every trial is in results.json beside this file.", ""]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--overlay", type=Path, default=Path("overlays/prod"))
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--tolerance", type=float, default=0.002)
    parser.add_argument(
        "--without-early-stopping",
        action="store_true",
        help="turn medianstop off, to see what it does to each algorithm",
    )
    parser.add_argument("--output", type=Path, help="default: this folder")
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = (
            HERE / "without-early-stopping" if args.without_early_stopping else HERE
        )
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s %(message)s"
    )
    logger.setLevel(logging.INFO)

    started = time.monotonic()
    base = load_experiment(args.overlay)
    if args.without_early_stopping:
        base = dataclasses.replace(base, early_stopping=None)
    with tempfile.TemporaryDirectory() as scratch:
        generate.generate_dataset(scratch, generate.GeneratorConfig(n_rows=args.rows))
        table, schema, _ = dataset.read_dataset(scratch)
    launcher = InProcessLauncher(table, schema)
    cache: dict = {}
    runs = []
    for seed in range(args.seeds):
        for algorithm in ALGORITHMS:
            run = run_one(variant(base, algorithm, seed, args.trials), launcher, cache)
            run["seed"] = seed
            runs.append(run)
            logger.info(
                "seed %d %s: best %.4f in %.0f s",
                seed,
                algorithm,
                run["best"],
                run["seconds"],
            )

    summary = summarize(runs, args.trials, args.tolerance)
    bayesian = {k: v for k, v in base.algorithm.settings.items() if k != "random_state"}
    context = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"),
        "command": " ".join(
            ["python -m benchmarks.tuning.run", *(argv or sys.argv[1:])]
        ),
        "minutes": (time.monotonic() - started) / 60,
        "machine": describe_machine(),
        "overlay": str(args.overlay),
        "rows": args.rows,
        "validation_rows": round(args.rows * 0.15),
        "seeds": args.seeds,
        "trials": args.trials,
        "tolerance": args.tolerance,
        "experiment": {
            "parameters": ", ".join(
                f"{p.name} {p.kind} [{p.low:g}, {p.high:g}]" for p in base.parameters
            ),
            "early_stopping": dataclasses.asdict(base.early_stopping)
            if base.early_stopping
            else None,
            "bayesian": bayesian,
        },
    }
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "results.json").write_text(
        json.dumps({"context": context, "summary": summary, "runs": runs}, indent=2)
    )
    write_markdown(args.output / "RESULTS.md", context, summary)
    print((args.output / "RESULTS.md").read_text())
    return 0
