"""Helpers for the server tests: start and stop a real server, build request bodies.

The server runs in a subprocess exactly as the ServingRuntime starts it, on a free
loopback port.
"""

from __future__ import annotations

import math
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd

MODEL_NAME = "credit-risk"
START_TIMEOUT_S = 60


@dataclass
class RunningServer:
    """A server process and an HTTP client bound to it."""

    process: subprocess.Popen
    base_url: str
    log: Path
    client: httpx.Client

    def post_json(self, path: str, body: bytes | str, **headers: str) -> httpx.Response:
        return self.client.post(
            path,
            content=body,
            headers={"content-type": "application/json", **headers},
        )

    def output(self) -> str:
        return self.log.read_text()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_command(model_dir: Path, port: int, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "xgbflow.cli",
        "serve",
        f"--model_name={MODEL_NAME}",
        f"--model_dir={model_dir}",
        f"--http_port={port}",
        "--http_host=127.0.0.1",
        *extra,
    ]


def start_server(model_dir: Path, log: Path, *extra: str) -> RunningServer:
    """Start the server and wait until /v2/health/ready says it is ready."""
    port = free_port()
    with log.open("w") as handle:  # the child keeps its own descriptor
        process = subprocess.Popen(
            serve_command(model_dir, port, *extra),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base_url, timeout=10)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited while starting:\n{log.read_text()}")
        try:
            if client.get("/v2/health/ready").status_code == 200:
                return RunningServer(process, base_url, log, client)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(RunningServer(process, base_url, log, client))
    raise AssertionError(f"server not ready in {START_TIMEOUT_S} s:\n{log.read_text()}")


def stop_server(server: RunningServer) -> None:
    server.client.close()
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def json_rows(frame: pd.DataFrame) -> list[dict]:
    """Model-frame rows as JSON objects: NaN and "" become null."""
    rows = []
    for record in frame.to_dict(orient="records"):
        rows.append(
            {
                name: None
                if (isinstance(value, float) and math.isnan(value)) or value == ""
                else value
                for name, value in record.items()
            }
        )
    return rows


def v2_body(rows: list[dict], schema, *, nested: bool = False) -> dict:
    """A V2 request with one [rows, 1] tensor per feature."""
    inputs = []
    for name in schema.features:
        values = [row[name] for row in rows]
        inputs.append(
            {
                "name": name,
                "datatype": "FP32" if name in schema.numeric else "BYTES",
                "shape": [len(rows), 1],
                "data": [[v] for v in values] if nested else values,
            }
        )
    return {"id": "request-1", "inputs": inputs}
