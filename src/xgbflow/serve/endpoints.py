"""The inference and readiness routes, installed ahead of kserve's own.

kserve's REST server answers V1 and V2 inference through its DataPlane, but a body it
cannot parse ends in FastAPI's generic validation error or, for data that does not fit
its shape, in a 500. These routes read the body within a size limit, check the content
type, parse and validate it (see requests), and only then hand a `Batch` to the model
through the same DataPlane, so every bad request is a 4xx that names the field.
Starlette matches routes in order, so installing these first is enough; kserve's
health, metadata, model-readiness, repository and /metrics routes stay as they are.

Server readiness is replaced too: kserve's answers "ready" whenever the process is up,
this one only while every registered model is loaded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import orjson
from kserve.protocol.dataplane import DataPlane
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from xgbflow.serve import requests
from xgbflow.serve.errors import (
    InvalidRequestError,
    PayloadTooLargeError,
    RequestError,
    UnknownModelError,
)
from xgbflow.serve.metrics import ServingMetrics
from xgbflow.serve.model import OnnxModel

logger = logging.getLogger(__name__)

DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
_JSON = "application/json"
_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class InferenceEndpoints:
    """V1 predict and V2 infer for the models in `dataplane`'s registry.

    `max_request_bytes` bounds the body (413 beyond it); `log_requests` writes one
    INFO line per inference request with its status, rows and duration.
    """

    def __init__(
        self,
        dataplane: DataPlane,
        metrics: ServingMetrics,
        *,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        log_requests: bool = True,
    ) -> None:
        self.dataplane = dataplane
        self.metrics = metrics
        self.max_request_bytes = max_request_bytes
        self.log_requests = log_requests

    def install(self, app: Starlette) -> None:
        """Add the routes to `app`; call before kserve registers its own."""
        app.add_route("/v1/models/{model_name}:predict", self.predict_v1, ["POST"])
        app.add_route("/v1/models/{model_name}:explain", self.explain_v1, ["POST"])
        app.add_route("/v2/models/{model_name}/infer", self.infer_v2, ["POST"])
        app.add_route(
            "/v2/models/{model_name}/versions/{model_version}/infer",
            self.infer_v2,
            ["POST"],
        )
        app.add_route("/v2/health/ready", self.server_ready, ["GET"])

    async def predict_v1(self, request: Request) -> Response:
        return await self._infer(request, "v1", requests.parse_v1)

    async def infer_v2(self, request: Request) -> Response:
        return await self._infer(request, "v2", requests.parse_v2)

    async def explain_v1(self, request: Request) -> Response:
        name = request.path_params["model_name"]
        return _error_response(
            UnknownModelError(
                f"model {name!r} has no explainer on this server; expected "
                f"/v1/models/{name}:predict"
            )
        )

    async def server_ready(self, request: Request) -> Response:
        models = self.dataplane.model_registry.get_models()
        ready = bool(models) and all([await m.healthy() for m in models.values()])
        status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
        return Response(orjson.dumps({"ready": ready}), status, media_type=_JSON)

    async def _infer(
        self, request: Request, protocol: str, parse: Callable[..., requests.Batch]
    ) -> Response:
        started = time.perf_counter()
        status = HTTPStatus.INTERNAL_SERVER_ERROR
        rows = 0
        reason = ""
        try:
            model = self._model(request)
            requests.check_content_type(request.headers.get("content-type"))
            body = await self._read_body(request)
            batch = parse(requests.decode_json(body), model.features)
            rows = batch.rows

            answer, _ = await self.dataplane.infer(model.name, batch)
            response = Response(
                orjson.dumps(answer, option=_DUMP_OPTIONS), media_type=_JSON
            )
            status = HTTPStatus.OK
            return response
        except RequestError as exc:
            status, reason = exc.status, f": {exc}"
            return _error_response(exc)
        finally:
            seconds = time.perf_counter() - started
            self.metrics.observe_request(protocol, status, seconds)
            if self.log_requests:
                logger.info(
                    "%s %s %d rows=%d %.2fms%s",
                    request.method,
                    request.scope["path"],
                    status,
                    rows,
                    seconds * 1000,
                    reason,
                )

    def _model(self, request: Request) -> OnnxModel:
        name = request.path_params["model_name"]
        model = self.dataplane.model_registry.get_model(name)
        if model is None:
            served = list(self.dataplane.model_registry.get_models())
            raise UnknownModelError(
                f"model {name!r} is not served here; expected {served}"
            )
        version = request.path_params.get("model_version")
        if version is not None and version != model.version:
            raise UnknownModelError(
                f"model {name!r} has no version {version!r}; expected {model.version!r}"
            )
        return model

    async def _read_body(self, request: Request) -> bytes:
        """The body, refused with 413 as soon as it exceeds the limit."""
        limit = self.max_request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLargeError(_too_large(f"Content-Length {declared}", limit))
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLargeError(_too_large(f"more than {limit}", limit))
                chunks.append(chunk)
        except ClientDisconnect as exc:
            raise InvalidRequestError(
                "the client disconnected before sending the whole body"
            ) from exc
        return b"".join(chunks)


def _too_large(size: str, limit: int) -> str:
    return (
        f"the request body has {size} bytes; expected at most {limit} "
        "(--max_request_bytes): split the batch into smaller requests"
    )


def _error_response(error: RequestError) -> Response:
    body: dict[str, Any] = {"error": str(error)}
    return Response(orjson.dumps(body), error.status, media_type=_JSON)
