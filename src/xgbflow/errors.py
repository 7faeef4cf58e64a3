"""Exceptions raised on bad input or a failed check, one class per kind of failure.

Every message names the field, shows the value and says what was expected, so that the
command line can print it as a single line and the model server can map the class to an
HTTP status.
"""

from __future__ import annotations


class XgbflowError(Exception):
    """Base class: an error the user can act on, printed without a traceback."""


class ConfigError(XgbflowError, ValueError):
    """An option or parameter has a value outside what it accepts."""


class DataError(XgbflowError, ValueError):
    """A table cannot be read or does not have the shape a step needs."""


class ValidationError(XgbflowError):
    """The data validation found violations; `report` holds every check."""

    def __init__(self, message: str, report: dict) -> None:
        super().__init__(message)
        self.report = report


class QualityGateError(XgbflowError):
    """The evaluated model does not meet the configured quality gate."""


class ParityError(XgbflowError):
    """The ONNX graph does not reproduce the trained pipeline's predictions."""
