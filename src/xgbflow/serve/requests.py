"""Turn request bodies into the ONNX graph's inputs, or refuse them with a clear 4xx.

Both protocols end in the same `Batch`: one [rows, 1] array per feature, float32 for
numeric features and Python strings for categorical ones, the exact form training fed
the pipeline (see dataset.to_model_frame). A missing value is JSON null (or a NaN
literal, which many encoders write) and becomes NaN or "", the same spelling training
used, so it scores exactly as missing values did there.

V1 (KServe):  {"instances": [{"age": 41, "region": "north", ...}, ...]}
              or rows as lists in schema order: {"instances": [[41, ..., "north"], ...]}
V2 (Open Inference Protocol):
              {"inputs": [{"name": "age", "datatype": "FP32", "shape": [2, 1],
                           "data": [41, null]}, ...], "id": "...", "outputs": [...]}

Every check raises InvalidRequestError (HTTP 400) whose message names the field by its
path in the body, shows the value and says what was expected. Nothing here raises any
other exception on any input: the fuzz tests in tests/serve hold it to that.
"""

from __future__ import annotations

import difflib
import json
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from xgbflow.serve.errors import InvalidRequestError, UnsupportedMediaTypeError

JSON_MEDIA_TYPE = "application/json"
#: Output tensors a V2 request may ask for by name, in the order they are returned.
OUTPUT_NAMES = ("label", "probabilities")
#: Datatypes accepted per feature kind. JSON numbers are doubles, so FP64 is accepted
#: as well; values are converted to float32, as the graph expects.
DATATYPES = {"numeric": ("FP32", "FP64"), "categorical": ("BYTES",)}
FLOAT32_MAX = float(np.finfo(np.float32).max)

_V1_FIELDS = ("instances",)
_V2_FIELDS = ("id", "parameters", "inputs", "outputs")
_V2_INPUT_FIELDS = ("name", "shape", "datatype", "parameters", "data")
_V2_OUTPUT_FIELDS = ("name", "parameters")
_NUMBER_TYPES = frozenset({int, float, type(None)})
_STRING_TYPES = frozenset({str, type(None)})
_SHOWN_CHARACTERS = 60


@dataclass(frozen=True)
class Feature:
    """One input of the model: its column name and "numeric" or "categorical"."""

    name: str
    kind: str


@dataclass(frozen=True)
class Batch:
    """A parsed request: one [rows, 1] array per feature, ready for the graph.

    `protocol` is "v1" or "v2"; `request_id` and `outputs` are V2's optional request
    id and requested output names (all outputs unless the request narrowed them).
    """

    protocol: str
    feeds: dict[str, np.ndarray]
    rows: int
    request_id: str | None = None
    outputs: tuple[str, ...] = OUTPUT_NAMES


def check_content_type(value: str | None) -> None:
    """Accept `application/json`, with or without parameters such as a charset."""
    if value is None:
        raise UnsupportedMediaTypeError(
            f"the Content-Type header is missing; expected {JSON_MEDIA_TYPE}"
        )
    media_type = value.split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        raise UnsupportedMediaTypeError(
            f"the Content-Type header is {_show(value)}; expected {JSON_MEDIA_TYPE}"
        )


def decode_json(body: bytes) -> Any:
    """The JSON value of `body`; NaN and Infinity literals are read as floats."""
    if not body.strip():
        raise InvalidRequestError("the request body is empty; expected a JSON object")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        strict_error = exc
    if b"NaN" in body or b"Infinity" in body:
        # Not JSON, but what Python's json, pandas and JavaScript's NaN handling write;
        # reading them here lets the value checks say precisely what is wrong.
        try:
            value = json.loads(body.decode("utf-8"), parse_constant=float)
            orjson.dumps(value)  # refuses strings that are not valid Unicode
        except (ValueError, RecursionError, orjson.JSONEncodeError):
            pass
        else:
            return value
    raise InvalidRequestError(
        f"the request body is not valid JSON ({strict_error}); expected a JSON object"
    ) from strict_error


def parse_v1(payload: Any, features: Sequence[Feature]) -> Batch:
    """A V1 body, `{"instances": [...]}`, as a Batch."""
    _check_object(payload, "the request body", _V1_FIELDS, required=_V1_FIELDS)
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise InvalidRequestError(
            f"'instances' is {_describe(instances)}; expected a list of rows"
        )
    if not instances:
        raise InvalidRequestError(
            "'instances' is an empty list; expected at least one row"
        )

    names = [feature.name for feature in features]
    expected_keys = set(names)
    # itemgetter pulls a row's values in schema order in one C call.
    getter = operator.itemgetter(*names) if len(names) > 1 else _single(names[0])
    rows: list[Any] = []
    for index, row in enumerate(instances):
        if isinstance(row, dict):
            if row.keys() != expected_keys:
                _check_names(list(row), names, f"instances[{index}]", "column")
            rows.append(getter(row))
        elif isinstance(row, list):
            if len(row) != len(names):
                raise InvalidRequestError(
                    f"instances[{index}] has {len(row)} values; expected "
                    f"{len(names)}, one per feature in schema order: {names}"
                )
            rows.append(row)
        else:
            raise InvalidRequestError(
                f"instances[{index}] is {_describe(row)}; expected an object of named "
                "columns or a list of values in schema order"
            )
    columns = list(zip(*rows, strict=True))

    feeds = {
        feature.name: _to_array(
            column,
            feature,
            lambda row, name=feature.name: _v1_path(instances, row, name),
        )
        for feature, column in zip(features, columns, strict=True)
    }
    return Batch("v1", feeds, len(instances))


def parse_v2(payload: Any, features: Sequence[Feature]) -> Batch:
    """A V2 (Open Inference Protocol) inference request body as a Batch."""
    _check_object(payload, "the request body", _V2_FIELDS, required=("inputs",))
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidRequestError(f"'id' is {_describe(request_id)}; expected a string")
    if "parameters" in payload:
        _check_parameters(payload["parameters"], "'parameters'")
    outputs = _requested_outputs(payload.get("outputs"))

    inputs = payload["inputs"]
    if not isinstance(inputs, list) or not inputs:
        raise InvalidRequestError(
            f"'inputs' is {_describe(inputs)}; expected a non-empty list with one "
            "tensor per feature"
        )
    by_name: dict[str, tuple[int, dict]] = {}
    for index, tensor in enumerate(inputs):
        where = f"inputs[{index}]"
        _check_object(
            tensor,
            where,
            _V2_INPUT_FIELDS,
            required=("name", "shape", "datatype", "data"),
        )
        name = tensor["name"]
        if not isinstance(name, str):
            raise InvalidRequestError(
                f"{where}.name is {_describe(name)}; expected a string"
            )
        if name in by_name:
            raise InvalidRequestError(
                f"{where}.name {name!r} repeats inputs[{by_name[name][0]}]; expected "
                "each feature once"
            )
        by_name[name] = (index, tensor)
    known = [feature.name for feature in features]
    if len(by_name) != len(known) or any(name not in by_name for name in known):
        _check_names(list(by_name), known, "'inputs'", "input")

    rows: int | None = None
    feeds: dict[str, np.ndarray] = {}
    for feature in features:
        index, tensor = by_name[feature.name]
        where = f"inputs[{index}] ({feature.name!r})"
        if "parameters" in tensor:
            _check_parameters(tensor["parameters"], f"{where}.parameters")
        _check_datatype(tensor["datatype"], feature, where)
        count = _check_shape(tensor["shape"], where)
        values = _flat_data(tensor["data"], count, where)
        if rows is None:
            rows = count
        elif count != rows:
            first = features[0].name
            raise InvalidRequestError(
                f"{where} has {count} rows but {first!r} has {rows}; expected the "
                "same number of rows in every input"
            )
        feeds[feature.name] = _to_array(
            values, feature, lambda row, where=where: f"{where}.data[{row}]"
        )
    return Batch("v2", feeds, rows or 0, request_id, outputs)


def _check_object(
    value: Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...]
) -> None:
    if not isinstance(value, dict):
        raise InvalidRequestError(
            f"{where} is {_describe(value)}; expected a JSON object with "
            f"{_listing(required)}"
        )
    for key in value:
        if key not in allowed:
            raise InvalidRequestError(
                f"{where} has an unknown field {_show(key)}{_suggest(key, allowed)}; "
                f"expected only {_listing(allowed)}"
            )
    for key in required:
        if key not in value:
            raise InvalidRequestError(f"{where} has no {key!r} field; it is required")


def _check_names(given: list[str], expected: list[str], where: str, what: str) -> None:
    """Raise for the first unknown name, else for the missing ones."""
    for name in given:
        if name not in expected:
            raise InvalidRequestError(
                f"{where} has an unknown {what} {_show(name)}"
                f"{_suggest(name, expected)}; expected the model's features: {expected}"
            )
    missing = [name for name in expected if name not in given]
    raise InvalidRequestError(
        f"{where} is missing {what}(s) {missing}; every feature is required, send "
        "null for a missing value"
    )


def _check_parameters(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise InvalidRequestError(
            f"{where} is {_describe(value)}; expected a JSON object"
        )
    for key in ("binary_data", "binary_data_output", "binary_data_size"):
        if value.get(key):
            raise InvalidRequestError(
                f"{where}.{key} is {_show(value[key])}; binary tensor data is not "
                "supported, expected JSON data"
            )


def _requested_outputs(value: Any) -> tuple[str, ...]:
    if value is None:
        return OUTPUT_NAMES
    if not isinstance(value, list) or not value:
        raise InvalidRequestError(
            f"'outputs' is {_describe(value)}; expected a non-empty list of "
            f"{{'name': ...}} with names from {list(OUTPUT_NAMES)}"
        )
    names = []
    for index, output in enumerate(value):
        where = f"outputs[{index}]"
        _check_object(output, where, _V2_OUTPUT_FIELDS, required=("name",))
        if "parameters" in output:
            _check_parameters(output["parameters"], f"{where}.parameters")
        name = output["name"]
        if name not in OUTPUT_NAMES:
            raise InvalidRequestError(
                f"{where}.name is {_show(name)}; expected one of {list(OUTPUT_NAMES)}"
            )
        names.append(name)
    return tuple(name for name in OUTPUT_NAMES if name in names)


def _check_datatype(value: Any, feature: Feature, where: str) -> None:
    accepted = DATATYPES[feature.kind]
    if value not in accepted:
        kind = "numbers" if feature.kind == "numeric" else "strings"
        raise InvalidRequestError(
            f"{where}.datatype is {_show(value)}; expected {' or '.join(accepted)} "
            f"for this {feature.kind} feature ({kind})"
        )


def _check_shape(value: Any, where: str) -> int:
    """The row count of a [rows] or [rows, 1] shape."""
    valid = (
        isinstance(value, list)
        and len(value) in (1, 2)
        and all(type(size) is int and size >= 0 for size in value)
        and (len(value) == 1 or value[1] == 1)
    )
    if not valid:
        raise InvalidRequestError(
            f"{where}.shape is {_show(value)}; expected [rows] or [rows, 1], one "
            "column per input"
        )
    if value[0] == 0:
        raise InvalidRequestError(
            f"{where}.shape is {value}; expected at least one row"
        )
    return value[0]


def _flat_data(value: Any, rows: int, where: str) -> list[Any]:
    """Data given flat ([a, b]) or nested by row ([[a], [b]]) as a flat list."""
    if not isinstance(value, list):
        raise InvalidRequestError(
            f"{where}.data is {_describe(value)}; expected a list of {rows} values"
        )
    if value and isinstance(value[0], list):
        flat = []
        for row, item in enumerate(value):
            if not isinstance(item, list) or len(item) != 1:
                raise InvalidRequestError(
                    f"{where}.data[{row}] is {_describe(item)}; expected nested data "
                    "to hold one value per row, like [[1.5], [2.0]]"
                )
            flat.append(item[0])
        value = flat
    if len(value) != rows:
        raise InvalidRequestError(
            f"{where}.shape says {rows} rows but data holds {len(value)} values; "
            "expected the shape to match the data"
        )
    return value


def _single(name: str):
    return lambda row: (row[name],)


def _to_array(values: Sequence[Any], feature: Feature, path) -> np.ndarray:
    """A [rows, 1] column for the graph; `path(row)` names a value in messages."""
    if feature.kind == "numeric":
        return _numeric_column(values, path)
    return _categorical_column(values, path)


def _check_types(values: Sequence[Any], allowed: frozenset, what: str, path) -> None:
    """Raise for the first value whose type is not allowed (one set pass if all are)."""
    if {type(value) for value in values} <= allowed:
        return
    for row, value in enumerate(values):
        if type(value) not in allowed:
            raise InvalidRequestError(
                f"{path(row)} is {_describe(value)}; expected {what}, or null for a "
                "missing value"
            )


def _numeric_column(values: Sequence[Any], path) -> np.ndarray:
    _check_types(values, _NUMBER_TYPES, "a number", path)
    try:
        column = np.array(values, dtype=np.float64)
    except OverflowError:
        column = np.array([_float_or_inf(value) for value in values])
    out_of_range = np.abs(column) > FLOAT32_MAX
    if out_of_range.any():
        row = int(np.argmax(out_of_range))
        raise InvalidRequestError(
            f"{path(row)} is {_show(values[row])}; expected a finite number within "
            f"float32 range (|x| <= {FLOAT32_MAX:.4g}), or null for a missing value"
        )
    return column.astype(np.float32).reshape(-1, 1)


def _categorical_column(values: Sequence[Any], path) -> np.ndarray:
    _check_types(values, _STRING_TYPES, "a string", path)
    column = np.empty((len(values), 1), dtype=object)
    column[:, 0] = ["" if value is None else value for value in values]
    return column


def _float_or_inf(value: Any) -> float:
    try:
        return math.nan if value is None else float(value)
    except OverflowError:
        return math.inf


def _v1_path(instances: list, row: int, name: str) -> str:
    if isinstance(instances[row], dict):
        return f"instances[{row}][{name!r}]"
    return f"instances[{row}] column {name!r}"


def _describe(value: Any) -> str:
    kinds = {
        type(None): "null",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }
    kind = kinds.get(type(value), type(value).__name__)
    if value is None:
        return kind
    if isinstance(value, list | dict) and not value:
        return f"an empty {'list' if isinstance(value, list) else 'object'}"
    return f"{_show(value)} ({kind})"


def _show(value: Any) -> str:
    """A short rendering of a client's value for an error message."""
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= _SHOWN_CHARACTERS else text[:57] + "..."
    try:
        text = orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        text = repr(value)
    if isinstance(value, float) and not math.isfinite(value):
        text = repr(value)
    if len(text) > _SHOWN_CHARACTERS:
        text = text[: _SHOWN_CHARACTERS - 3] + "..."
    return text


def _listing(names: tuple[str, ...]) -> str:
    return ", ".join(repr(name) for name in names)


def _suggest(name: Any, choices: Sequence[str]) -> str:
    if not isinstance(name, str):
        return ""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
