"""Errors of the model server, each tied to one HTTP status.

Request errors are the client's to fix: their message names the field, shows the value
and says what was expected, and the server answers it as `{"error": message}` with the
class's status. ModelLoadError stops the server before it listens.
"""

from __future__ import annotations

from http import HTTPStatus

from xgbflow.errors import XgbflowError


class ModelLoadError(XgbflowError):
    """The model directory is missing, incomplete or unreadable."""


class RequestError(XgbflowError):
    """A request the server refuses; `status` is the HTTP status it is answered with."""

    status: HTTPStatus = HTTPStatus.BAD_REQUEST


class InvalidRequestError(RequestError):
    """The body is not valid JSON or does not describe the model's inputs."""


class UnsupportedMediaTypeError(RequestError):
    """The Content-Type header is missing or is not JSON."""

    status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE


class PayloadTooLargeError(RequestError):
    """The body is larger than the server's configured limit."""

    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class UnknownModelError(RequestError):
    """The URL names a model or model version this server does not serve."""

    status = HTTPStatus.NOT_FOUND
