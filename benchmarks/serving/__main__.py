"""Serving benchmark: `python -m benchmarks.serving`, from the repository root.

Needs wrk on PATH (Debian: apt-get install -y wrk); MLServer is installed into its own
virtual environment under .bench/ on the first run (mlserver-requirements.txt).

Trains one model (see prepare), loads it into each server, drives each over loopback
with wrk, rows varying between requests, and writes benchmarks/serving/RESULTS.md and
results.json. Every run is bounded: a fixed number of wrk runs of --seconds each, only
127.0.0.1 as target. Servers run one at a time; the machine's two cores are shared by
the server and wrk.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import random
import statistics
import subprocess
import time
import urllib.request
from dataclasses import asdict
from pathlib import Path

from benchmarks.machine import describe_machine as shared_machine_description
from benchmarks.serving import load, prepare, report, targets

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SINGLE_RATES = (200, 500, 1000)
BATCH_RATES = (20, 50, 100)
MAX_CONNECTIONS = (8, 32)
PACED_CONNECTIONS = 32
BODIES = {1: 200, 100: 40}


def build_bodies(rows: dict, batch: int, count: int, seed: int) -> dict[str, list]:
    """`count` request bodies of `batch` rows each, per request format.

    "expected" holds each body's positive-class probabilities from the pipeline.
    """
    rng = random.Random(seed)
    names = rows["features"]
    numeric = set(rows["numeric"])
    bodies: dict[str, list] = {"v1": [], "v2": [], "mlserver": [], "expected": []}
    for _ in range(count):
        picks = [rng.randrange(len(rows["raw"])) for _ in range(batch)]
        bodies["expected"].append([rows["positive_probability"][i] for i in picks])
        raw = [rows["raw"][i] for i in picks]
        instances = [dict(zip(names, row, strict=True)) for row in raw]
        bodies["v1"].append(_dump({"instances": instances}))
        inputs = [
            {
                "name": name,
                "datatype": "FP32" if name in numeric else "BYTES",
                "shape": [batch, 1],
                "data": [row[column] for row in raw],
            }
            for column, name in enumerate(names)
        ]
        bodies["v2"].append(_dump({"inputs": inputs}))
        matrix = [rows["preprocessed"][i] for i in picks]
        mlserver = {
            "inputs": [
                {
                    "name": "features",
                    "datatype": "FP32",
                    "shape": [batch, len(matrix[0])],
                    "data": [value for row in matrix for value in row],
                }
            ],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        }
        bodies["mlserver"].append(_dump(mlserver))
    return bodies


def check_answer(
    server: targets.Server, path: str, body: bytes, expected: list
) -> None:
    """Refuse to benchmark a server that does not reproduce the pipeline."""
    request = urllib.request.Request(
        server.base + path, data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        answer = json.loads(reply.read())
    if "predictions" in answer:
        positive = [row["probabilities"][1] for row in answer["predictions"]]
    else:
        outputs = {output["name"]: output["data"] for output in answer["outputs"]}
        pairs = outputs.get("probabilities") or outputs["predict_proba"]
        positive = pairs[1::2]
    worst = max(abs(a - b) for a, b in zip(positive, expected, strict=True))
    if worst > 1e-5:
        raise RuntimeError(
            f"{server.name} {path} differs from the pipeline by {worst:.3g}; "
            "expected the same model's probabilities"
        )


def measure_server(
    server: targets.Server,
    path: str,
    bodies: list[bytes],
    batch: int,
    work: Path,
    seconds: int,
    rates: tuple[int, ...],
    label: str,
) -> dict:
    """Max throughput (closed loop) and latency at fixed rates for one endpoint."""
    url = server.base + path
    script = load.write_script(work / f"{label}-{batch}.lua", path, bodies, 0, 1)
    load.run_wrk(url, script, seconds=2, connections=8)  # warm-up, not reported
    runs: dict = {"max": [], "paced": []}
    for connections in MAX_CONNECTIONS:
        result = load.run_wrk(url, script, seconds=seconds, connections=connections)
        runs["max"].append({"connections": connections, **_result(result)})
        logger.info(
            "%s batch %d c=%d: %.0f req/s p99 %.2f ms errors %.2f%%",
            label,
            batch,
            connections,
            result.rate,
            result.p99_ms,
            100 * result.error_share,
        )
    for rate in rates:
        paced = load.write_script(
            work / f"{label}-{batch}-{rate}.lua", path, bodies, rate, 1
        )
        result = load.run_wrk(
            url, paced, seconds=seconds, connections=PACED_CONNECTIONS
        )
        runs["paced"].append({"target_rate": rate, **_result(result)})
        logger.info(
            "%s batch %d at %d req/s: got %.0f, p50 %.2f ms p99 %.2f ms",
            label,
            batch,
            rate,
            result.rate,
            result.p50_ms,
            result.p99_ms,
        )
    runs["rss_mib_after"] = server.resident_mib()
    return runs


def measure_onnxruntime(work: Path, rows: dict, seconds: float) -> dict:
    """The floor: the graph called in-process, one thread, inputs prebuilt."""
    import numpy as np

    from xgbflow.serve.model import open_session

    session = open_session(work / "model" / "model.onnx", threads=1)
    names = rows["features"]
    numeric = set(rows["numeric"])
    results = {}
    for batch, count in BODIES.items():
        rng = random.Random(batch)
        feeds = []
        for _ in range(count):
            raw = [rows["raw"][rng.randrange(len(rows["raw"]))] for _ in range(batch)]
            feed = {}
            for column, name in enumerate(names):
                values = [row[column] for row in raw]
                if name in numeric:
                    feed[name] = np.array(
                        [np.nan if v is None else v for v in values], dtype=np.float32
                    ).reshape(-1, 1)
                else:
                    feed[name] = np.array(
                        ["" if v is None else v for v in values], dtype=object
                    ).reshape(-1, 1)
            feeds.append(feed)
        timings = []
        deadline = time.perf_counter() + seconds
        index = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            session.run(["label", "probabilities"], feeds[index % len(feeds)])
            timings.append(time.perf_counter() - started)
            index += 1
        timings.sort()
        results[batch] = {
            "calls": len(timings),
            "rate": len(timings) / sum(timings),
            "p50_ms": 1000 * timings[len(timings) // 2],
            "p99_ms": 1000 * timings[int(len(timings) * 0.99)],
            "mean_ms": 1000 * statistics.fmean(timings),
        }
    return results


def describe_machine() -> dict:
    """The shared machine description, plus wrk's version and the time of the run."""
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return shared_machine_description() | {
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0].strip(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving")
    parser.add_argument("--work", type=Path, default=Path(".bench/serving"))
    parser.add_argument("--seconds", type=int, default=8, help="length of each run")
    parser.add_argument(
        "--output", type=Path, default=HERE / "RESULTS.md", help="report file"
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the report from the last results.json, measuring nothing",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        results = json.loads((HERE / "results.json").read_text())
        for server in results["servers"].values():
            server["batches"] = {int(k): v for k, v in server["batches"].items()}
        report.write_report(results, args.output)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    targets.ensure_tools()
    args.work.mkdir(parents=True, exist_ok=True)
    work = args.work.resolve()

    summary = prepare.prepare_models(work)
    rows = json.loads((work / "rows.json").read_text())
    bodies = {
        batch: build_bodies(rows, batch, count, seed=batch)
        for batch, count in BODIES.items()
    }
    results: dict = {
        "machine": describe_machine(),
        "model": summary,
        "seconds_per_run": args.seconds,
        "servers": {},
    }
    rates = {1: SINGLE_RATES, 100: BATCH_RATES}
    name = targets.MODEL_NAME
    plans = [
        (
            "xgbflow",
            lambda: targets.start_xgbflow(work),
            [
                ("xgbflow V1", f"/v1/models/{name}:predict", "v1"),
                ("xgbflow V2", f"/v2/models/{name}/infer", "v2"),
            ],
            (1, 100),
        ),
        (
            "xgbflow-nolog",
            lambda: targets.start_xgbflow(work, log_requests=False),
            [("xgbflow V1, request log off", f"/v1/models/{name}:predict", "v1")],
            (1,),
        ),
        (
            "mlserver",
            lambda: targets.start_mlserver(work),
            [("MLServer XGBoost (defaults)", f"/v2/models/{name}/infer", "mlserver")],
            (1,),
        ),
        (
            "mlserver-omp1",
            lambda: targets.start_mlserver(work, omp_threads=1),
            [(report.MLSERVER, f"/v2/models/{name}/infer", "mlserver")],
            (1, 100),
        ),
        (
            "mlserver-pw0-omp1",
            lambda: targets.start_mlserver(work, parallel_workers=0, omp_threads=1),
            [(report.MLSERVER_INPROCESS, f"/v2/models/{name}/infer", "mlserver")],
            (1, 100),
        ),
        ("bare", lambda: targets.start_bare(work), [("bare HTTP", "/", "v1")], (1,)),
    ]
    for key, start, endpoints, batches in plans:
        server = start()
        try:
            idle = server.resident_mib()
            for label, path, form in endpoints:
                if key != "bare":
                    check_answer(
                        server, path, bodies[1][form][0], bodies[1]["expected"][0]
                    )
                entry = results["servers"].setdefault(
                    label, {"rss_mib_idle": idle, "batches": {}}
                )
                for batch in batches:
                    entry["batches"][batch] = measure_server(
                        server,
                        path,
                        bodies[batch][form],
                        batch,
                        work,
                        args.seconds,
                        rates[batch]
                        if key not in ("xgbflow-nolog", "bare", "mlserver")
                        else (),
                        f"{key}-{form}",
                    )
        finally:
            server.stop()
    results["onnxruntime"] = measure_onnxruntime(work, rows, seconds=args.seconds)

    (HERE / "results.json").write_text(json.dumps(results, indent=2, default=str))
    report.write_report(results, args.output)
    logger.info("wrote %s", args.output)
    return 0


def _result(result: load.LoadResult) -> dict:
    """The run's numbers and the machine's 1-minute load average just after it."""
    return {
        **asdict(result),
        "rate": result.rate,
        "error_share": result.error_share,
        "load_average": os.getloadavg()[0],
    }


def _dump(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


if __name__ == "__main__":
    raise SystemExit(main())
