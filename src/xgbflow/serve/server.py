"""`xgbflow serve`: one model directory over KServe V1 and V2 REST, with /metrics.

In the cluster the ServingRuntime runs

    xgbflow serve --model_name={{.Name}} --model_dir=/mnt/models --http_port=8080

and on a laptop `xgbflow serve` alone serves the latest local run (runs/latest/model).

The model is loaded and checked before the port opens, so the server is never up
without a model: a missing or corrupt directory ends the command with a one-line
message and exit status 1. It is built from kserve's parts: its Model class, its
ModelServer's registry and DataPlane, and its REST server with its health, metadata,
repository and /metrics routes. It is started through RESTServer directly, not
ModelServer.start, because ModelServer.start binds every interface and also opens a
gRPC port; here the bind address is an option (loopback unless told otherwise) and
the contract serves REST only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from xgbflow.errors import XgbflowError

if TYPE_CHECKING:
    from xgbflow.serve.model import OnnxModel

logger = logging.getLogger(__name__)

DEFAULT_MODEL_DIR = Path("runs/latest/model")
DEFAULT_MODEL_NAME = "xgbflow-classifier"
#: The serving image sets this to 0.0.0.0; a laptop keeps the server on loopback.
HOST_ENV = "XGBFLOW_HTTP_HOST"


def build_parser() -> argparse.ArgumentParser:
    # Option names must not be prefixes of kserve's own (--log_config_file, ...):
    # importing kserve parses sys.argv with abbreviations allowed.
    parser = argparse.ArgumentParser(
        prog="xgbflow serve",
        description="Serve an exported model directory over KServe V1 and V2 REST.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--model_name",
        help="name in the URLs; default: the model_name in metadata.json",
    )
    parser.add_argument(
        "--model_dir",
        type=Path,
        default=DEFAULT_MODEL_DIR,
        help="directory holding model.onnx and metadata.json",
    )
    parser.add_argument("--http_port", type=_port, default=8080)
    parser.add_argument(
        "--http_host",
        default=os.environ.get(HOST_ENV, "127.0.0.1"),
        help=f"address to listen on (environment: {HOST_ENV})",
    )
    parser.add_argument(
        "--max_request_bytes",
        type=_positive,
        default=4 * 1024 * 1024,
        help="larger request bodies are refused with 413",
    )
    parser.add_argument(
        "--intra_op_threads",
        type=_positive,
        default=1,
        help="onnxruntime threads per request",
    )
    parser.add_argument(
        "--drift_window_rows",
        type=_positive,
        default=10_000,
        help="rows in the sliding window of the drift and missing-value gauges",
    )
    parser.add_argument(
        "--log_requests",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one INFO line per inference request: status, rows, milliseconds",
    )
    parser.add_argument(
        "--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    return parser


def load_model(
    model_dir: Path, model_name: str | None = None, threads: int = 1
) -> OnnxModel:
    """The model directory loaded and checked; raises ModelLoadError."""
    # kserve, imported with the model, parses sys.argv on import: after our parser.
    from xgbflow.serve.model import METADATA_FILE, OnnxModel, read_metadata

    if model_name is None:
        metadata = read_metadata(model_dir / METADATA_FILE)
        model_name = str(metadata.get("model_name") or DEFAULT_MODEL_NAME)
    model = OnnxModel(model_name, model_dir, threads=threads)
    model.load()
    return model


def serve(model: OnnxModel, options: argparse.Namespace) -> None:
    """Serve the loaded `model` until SIGTERM or SIGINT."""
    from kserve import ModelServer
    from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
    from kserve.model_server import app
    from kserve.protocol.rest.server import RESTServer

    from xgbflow.serve.endpoints import InferenceEndpoints
    from xgbflow.serve.metrics import ServingMetrics

    metrics = ServingMetrics(
        model.name,
        model.version,
        model.features,
        model.metadata["reference"],
        window_rows=options.drift_window_rows,
    )
    model.metrics = metrics
    server = ModelServer(
        http_port=options.http_port,
        enable_grpc=False,
        workers=1,
        enable_latency_logging=False,
    )
    server.register_model(model)
    InferenceEndpoints(
        server.dataplane,
        metrics,
        max_request_bytes=options.max_request_bytes,
        log_requests=options.log_requests,
    ).install(app)

    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        options.http_port,
    )
    rest.config.host = options.http_host
    logger.info(
        "serving %s on http://%s:%d (V1 /v1/models/%s:predict, V2 /v2/models/%s/infer)",
        model.name,
        options.http_host,
        options.http_port,
        model.name,
        model.name,
    )
    _run(rest.start())


def configure_logging(level: str) -> None:
    """One format for the server's, kserve's and uvicorn's loggers, on stderr.

    uvicorn's access log and kserve's per-request timing lines are turned down to
    warnings: the inference routes write one line per request themselves, and health
    probes and scrapes are not worth a line each.
    """
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
            },
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": "plain",
                    "stream": "ext://sys.stderr",
                }
            },
            "root": {"handlers": ["stderr"], "level": level},
            "loggers": {
                # A handler of its own stops kserve from installing its log config.
                "kserve": {"handlers": ["stderr"], "level": level, "propagate": False},
                "kserve.trace": {"level": "WARNING"},
                "uvicorn.access": {"level": "WARNING"},
            },
        }
    )


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    configure_logging(options.log_level)

    try:
        model = load_model(
            options.model_dir, options.model_name, options.intra_op_threads
        )
    except XgbflowError as exc:
        print(f"xgbflow serve: {exc}", file=sys.stderr)
        return 1
    serve(model, options)
    return 0


def _run(coroutine) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1-65535)")
    return port


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return value
