"""`xgbflow run`: the training pipeline, whole, on this machine.

Runs pipelines/training_pipeline.py with the KFP local runner: each component in its own
Python subprocess of this environment, artifacts under runs/<run-id>/. It tracks into
the local MLflow store unless MLFLOW_TRACKING_URI or --tracking-uri says otherwise, and
ends with a summary: each metric against the gate, the Bayes-optimal accuracy, the
parity result, and where the model directory and the MLflow run are. runs/latest points
at the newest run, whose model directory `xgbflow serve` serves by default.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from xgbflow.config import TrainParams, resolve_tracking_uri
from xgbflow.errors import ConfigError, XgbflowError

logger = logging.getLogger(__name__)

DEFAULT_PIPELINE = Path("pipelines/training_pipeline.py")
DEFAULT_RUNS = Path("runs")


class _Parser(argparse.ArgumentParser):
    """Reports a bad option in one line, without the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    defaults = TrainParams()
    parser = _Parser(
        prog="xgbflow run",
        description="Run the training pipeline locally with the KFP local runner.",
    )
    data = parser.add_argument_group("data (synthetic unless --data is given)")
    data.add_argument("--data", default="", help="CSV or Parquet file to train on")
    data.add_argument("--target", default="target", help="label column of --data")
    data.add_argument(
        "--categorical",
        default="",
        help="comma-separated categorical columns of --data",
    )
    data.add_argument("--rows", type=int, default=100_000, help="synthetic rows")
    data.add_argument("--seed", type=int, default=42)
    data.add_argument("--positive-rate", type=float, default=0.5)
    data.add_argument("--missing-rate", type=float, default=0.02)

    # Training values are parsed by TrainParams, which accepts "6" and "6.0" for an
    # integer, as Katib's substitutions may give them, and says why it refuses one.
    model = parser.add_argument_group("training")
    model.add_argument("--max-depth", default=defaults.max_depth)
    model.add_argument("--learning-rate", default=defaults.learning_rate)
    model.add_argument("--n-estimators", default=defaults.n_estimators)
    model.add_argument("--min-child-weight", default=defaults.min_child_weight)
    model.add_argument("--subsample", default=defaults.subsample)
    model.add_argument("--gate", type=float, default=0.90, help="minimum test accuracy")

    where = parser.add_argument_group("where")
    where.add_argument("--tracking-uri", default="", help="MLflow tracking URI")
    where.add_argument("--model-name", default="xgbflow-classifier")
    where.add_argument("--publish", default="", help="also copy the model here")
    where.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS)
    where.add_argument("--pipeline", type=Path, default=DEFAULT_PIPELINE)
    return parser


def pipeline_arguments(args: argparse.Namespace, tracking_uri: str) -> dict[str, Any]:
    """The pipeline's parameters from the command line, checked before anything runs."""
    if args.data and not ("://" in args.data or Path(args.data).is_file()):
        raise ConfigError(f"--data {args.data!r} is not a file")
    if args.rows < 1:
        raise ConfigError(f"--rows {args.rows} is not a positive number of rows")
    params = TrainParams.from_mapping(
        {
            "max_depth": args.max_depth,
            "learning_rate": args.learning_rate,
            "n_estimators": args.n_estimators,
            "min_child_weight": args.min_child_weight,
            "subsample": args.subsample,
            "seed": args.seed,
        }
    )
    data_uri = args.data
    if data_uri and "://" not in data_uri:
        data_uri = str(Path(data_uri).resolve())
    return {
        "data_uri": data_uri,
        "target": args.target,
        "categorical_columns": args.categorical,
        "n_rows": args.rows,
        "seed": args.seed,
        "positive_rate": args.positive_rate,
        "missing_rate": args.missing_rate,
        "max_depth": params.max_depth,
        "learning_rate": params.learning_rate,
        "n_estimators": params.n_estimators,
        "min_child_weight": params.min_child_weight,
        "subsample": params.subsample,
        "accuracy_gate": args.gate,
        "mlflow_tracking_uri": tracking_uri,
        "registered_model_name": args.model_name,
        "model_publish_uri": args.publish,
    }


def load_pipeline(path: Path):
    """The pipeline function defined in `path`."""
    if not path.is_file():
        raise ConfigError(
            f"--pipeline {str(path)!r} does not exist; run from the repository root "
            "or pass the path of training_pipeline.py"
        )
    spec = importlib.util.spec_from_file_location("xgbflow_training_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.training_pipeline


def run_pipeline(pipeline, arguments: dict[str, Any], run_dir: Path) -> None:
    """Execute `pipeline` (from load_pipeline) locally; artifacts land in run_dir."""
    from kfp import local

    # Components start `python3` from PATH: make it this environment's interpreter.
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    # A laptop run reports nothing to anyone: MLflow's usage telemetry stays off.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(run_dir / "artifacts"),
        raise_on_error=True,
    )
    pipeline(**arguments)


def find_output(run_dir: Path, task: str, output: str) -> Path:
    matches = sorted((run_dir / "artifacts").glob(f"*/{task}/{output}"))
    if not matches:
        raise XgbflowError(f"the run left no {task}/{output} under {run_dir}")
    return matches[-1]


def summarize(run_dir: Path, elapsed: float) -> str:
    """The closing summary, from the run's own artifacts."""
    evaluation = json.loads(
        find_output(run_dir, "evaluate-model", "evaluation").read_text()
    )
    lines = [f"run {run_dir.name} finished in {elapsed:.0f} s", ""]
    gate = evaluation["gate"]
    lines.append(f"{'metric':<12}{'test':>9}")
    for name, value in evaluation["metrics"].items():
        mark = ""
        if name == gate["metric"]:
            verdict = "passed" if gate["passed"] else "FAILED"
            mark = f"   gate >= {gate['threshold']:.2f}: {verdict}"
        lines.append(f"{name:<12}{value:>9.4f}{mark}")
    bayes = evaluation.get("bayes_accuracy")
    if bayes:
        gap = bayes["expected"] - evaluation["metrics"]["accuracy"]
        lines.append(
            f"{'bayes':<12}{bayes['expected']:>9.4f}   Bayes-optimal accuracy of the "
            f"test split ({gap * 100:.2f} points above the model)"
        )
    try:
        model_dir = find_output(run_dir, "export-onnx", "onnx_model")
    except XgbflowError:
        lines.append("\nno model exported")
        return "\n".join(lines)
    metadata = json.loads((model_dir / "metadata.json").read_text())
    parity = metadata["parity"]
    lines.append(
        f"\nONNX parity on {parity['rows']} test rows: labels differing "
        f"{parity['labels_differing']}, max probability difference "
        f"{parity['max_probability_difference']:.1e} "
        f"(tolerance {parity['tolerance']:g})"
    )
    lines.append(f"model {metadata['model_name']} version {metadata['model_version']}")
    lines.append(f"model directory  {run_dir / 'model'}")
    try:
        tracking = json.loads(find_output(run_dir, "track-run", "tracking").read_text())
        registered = tracking["registered_model"]
        lines.append(
            f"MLflow run       {tracking['run_id']} in {tracking['tracking_uri']}"
        )
        if registered:
            lines.append(
                f"registered as    {registered['name']} v{registered['version']}"
            )
    except XgbflowError:
        lines.append("MLflow run       not tracked")
    return "\n".join(lines)


def _link_outputs(run_dir: Path, runs_dir: Path) -> None:
    try:
        model_dir = find_output(run_dir, "export-onnx", "onnx_model")
    except XgbflowError:
        return
    (run_dir / "model").symlink_to(model_dir.relative_to(run_dir))
    latest = runs_dir / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run_dir.name)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")

    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_dir = (args.runs_dir / run_id).resolve()
    try:
        arguments = pipeline_arguments(args, resolve_tracking_uri(args.tracking_uri))
        pipeline = load_pipeline(args.pipeline)
        run_dir.mkdir(parents=True)
        started = time.monotonic()
        failure = None
        try:
            run_pipeline(pipeline, arguments, run_dir)
        except RuntimeError as exc:
            failure = exc
        _link_outputs(run_dir, args.runs_dir.resolve())
        summary = summarize(run_dir, time.monotonic() - started)
    except XgbflowError as exc:
        print(f"xgbflow run: {exc}", file=sys.stderr)
        return 2

    print("\n" + summary)
    if failure is not None:
        print(f"\nxgbflow run: the pipeline failed: {failure}", file=sys.stderr)
        return 1
    return 0
