"""Start, probe and stop the servers under test; all listen on 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL_NAME = "bench"
MLSERVER_VENV = ROOT / ".bench" / "mlserver"


@dataclass
class Server:
    """A running server process and where to reach it."""

    name: str
    process: subprocess.Popen
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def resident_mib(self) -> float:
        """Resident memory of the process and all its descendants, in MiB."""
        return sum(_rss_kib(pid) for pid in _tree(self.process.pid)) / 1024

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_xgbflow(work: Path, *, log_requests: bool = True) -> Server:
    port = free_port()
    command = [
        str(ROOT / ".venv" / "bin" / "xgbflow"),
        "serve",
        f"--model_name={MODEL_NAME}",
        f"--model_dir={work / 'model'}",
        f"--http_port={port}",
        "--http_host=127.0.0.1",
        "--log_requests" if log_requests else "--no-log_requests",
    ]
    name = "xgbflow" if log_requests else "xgbflow-nolog"
    return _start(name, command, port, work, "/v2/health/ready")


def ensure_tools() -> None:
    """wrk on PATH and the MLServer environment under .bench/, or a clear error."""
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed; expected it on PATH (apt-get install -y wrk)"
        )
    python = MLSERVER_VENV / "bin" / "python"
    if not (MLSERVER_VENV / "bin" / "mlserver").exists():
        uv = ROOT / ".venv" / "bin" / "uv"
        subprocess.run([str(uv), "venv", "-q", str(MLSERVER_VENV)], check=True)
        subprocess.run(
            [
                str(uv),
                "pip",
                "install",
                "-q",
                "--python",
                str(python),
                "-r",
                str(Path(__file__).with_name("mlserver-requirements.txt")),
            ],
            check=True,
        )


def start_mlserver(
    work: Path, *, parallel_workers: int | None = None, omp_threads: int | None = None
) -> Server:
    """MLServer 1.7 with mlserver-xgboost, from its own virtual environment.

    `omp_threads` sets OMP_NUM_THREADS: XGBoost's OpenMP threads default to one per
    core and, sharing two cores with the event loop and wrk, spin against them.
    """
    port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    name = "mlserver"
    if parallel_workers is not None:
        name += f"-pw{parallel_workers}"
    if omp_threads is not None:
        name += f"-omp{omp_threads}"
    directory = work / name
    directory.mkdir(parents=True, exist_ok=True)
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
    }
    if parallel_workers is not None:
        settings["parallel_workers"] = parallel_workers
    (directory / "settings.json").write_text(json.dumps(settings))
    model = {
        "name": MODEL_NAME,
        "implementation": "mlserver_xgboost.XGBoostModel",
        "parameters": {"uri": str(work / "mlserver" / "model.json")},
    }
    (directory / "model-settings.json").write_text(json.dumps(model))
    command = [str(MLSERVER_VENV / "bin" / "mlserver"), "start", "."]
    env = None if omp_threads is None else {"OMP_NUM_THREADS": str(omp_threads)}
    return _start(
        name,
        command,
        port,
        work,
        f"/v2/models/{MODEL_NAME}/ready",
        cwd=directory,
        env=env,
    )


def start_bare(work: Path) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.serving.bare", str(port)]
    return _start("bare", command, port, work, "/")


def _start(
    name: str,
    command: list[str],
    port: int,
    work: Path,
    ready_path: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Server:
    log = work / f"{name}.log"
    with log.open("w") as handle:  # the child keeps its own descriptor
        process = subprocess.Popen(
            command,
            cwd=cwd or ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    server = Server(name, process, port, log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited while starting; see {log}")
        try:
            with urllib.request.urlopen(server.base + ready_path, timeout=2) as reply:
                if reply.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"{name} was not ready within 120 s; see {log}")


def _tree(pid: int) -> list[int]:
    pids = [pid]
    for child in Path(f"/proc/{pid}/task").glob("*/children"):
        for token in child.read_text().split():
            pids += _tree(int(token))
    return pids


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:
        return 0
    return 0
