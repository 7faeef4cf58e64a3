"""The request parser: what it accepts, how it names what it refuses, and fuzzing."""

from __future__ import annotations

import json
import math

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xgbflow.serve.errors import (
    InvalidRequestError,
    RequestError,
    UnsupportedMediaTypeError,
)
from xgbflow.serve.requests import (
    Batch,
    Feature,
    check_content_type,
    decode_json,
    parse_v1,
    parse_v2,
)

FEATURES = (
    Feature("age", "numeric"),
    Feature("income", "numeric"),
    Feature("region", "categorical"),
)
ROW = {"age": 41, "income": 52000.5, "region": "north"}


def v2(rows: list[dict], **overrides) -> dict:
    inputs = [
        {
            "name": feature.name,
            "datatype": "FP32" if feature.kind == "numeric" else "BYTES",
            "shape": [len(rows), 1],
            "data": [row[feature.name] for row in rows],
        }
        for feature in FEATURES
    ]
    return {"inputs": inputs, **overrides}


def test_parse_v1_named_and_ordered_rows_give_the_same_arrays():
    named = parse_v1({"instances": [ROW, ROW]}, FEATURES)
    ordered = parse_v1({"instances": [list(ROW.values())] * 2}, FEATURES)

    for batch in (named, ordered):
        assert batch.rows == 2
        assert batch.feeds["age"].dtype == np.float32
        assert batch.feeds["age"].shape == (2, 1)
        assert batch.feeds["region"].dtype == object
        assert batch.feeds["region"][:, 0].tolist() == ["north", "north"]
    np.testing.assert_array_equal(named.feeds["income"], ordered.feeds["income"])


def test_parse_null_and_nan_become_the_training_missing_values():
    row = {"age": None, "income": math.nan, "region": None}
    batch = parse_v1({"instances": [row]}, FEATURES)

    assert math.isnan(batch.feeds["age"][0, 0])
    assert math.isnan(batch.feeds["income"][0, 0])
    assert batch.feeds["region"][0, 0] == ""


def test_decode_json_reads_nan_literals_as_missing():
    body = b'{"instances": [{"age": NaN, "income": 1.0, "region": "north"}]}'
    batch = parse_v1(decode_json(body), FEATURES)

    assert math.isnan(batch.feeds["age"][0, 0])


@pytest.mark.parametrize("nested", [False, True])
def test_parse_v2_flat_or_nested_data(nested):
    body = v2([ROW, {**ROW, "age": None}], id="r-7")
    if nested:
        for tensor in body["inputs"]:
            tensor["data"] = [[value] for value in tensor["data"]]
    batch = parse_v2(body, FEATURES)

    assert batch.rows == 2
    assert batch.request_id == "r-7"
    assert batch.feeds["age"][0, 0] == 41
    assert math.isnan(batch.feeds["age"][1, 0])


def test_parse_v2_accepts_rank_one_shapes_fp64_and_output_selection():
    body = v2([ROW], outputs=[{"name": "probabilities"}])
    for tensor in body["inputs"]:
        tensor["shape"] = [1]
    body["inputs"][0]["datatype"] = "FP64"
    batch = parse_v2(body, FEATURES)

    assert batch.outputs == ("probabilities",)
    assert batch.feeds["age"].dtype == np.float32


def _without(mapping: dict, key: str) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


BAD_V1 = {
    "not an object": ([ROW], "the request body"),
    "no instances": ({"rows": [ROW]}, "'rows'"),
    "instances not a list": ({"instances": ROW}, "'instances'"),
    "empty batch": ({"instances": []}, "'instances' is an empty list"),
    "missing column": ({"instances": [_without(ROW, "income")]}, "'income'"),
    "misspelled column": (
        {"instances": [{**_without(ROW, "income"), "incme": 1}]},
        "did you mean 'income'",
    ),
    "unknown column": ({"instances": [{**ROW, "colour": "red"}]}, "'colour'"),
    "row of the wrong length": ({"instances": [[41, 1.0]]}, "instances[0] has 2"),
    "row neither object nor list": ({"instances": [41]}, "instances[0]"),
    "string for a number": (
        {"instances": [ROW, {**ROW, "income": "52000"}]},
        "instances[1]['income']",
    ),
    "boolean for a number": ({"instances": [{**ROW, "age": True}]}, "'age'"),
    "number for a category": ({"instances": [{**ROW, "region": 3}]}, "'region'"),
    "infinity": ({"instances": [{**ROW, "age": math.inf}]}, "'age'"),
    "beyond float32": ({"instances": [{**ROW, "income": 1e39}]}, "float32"),
    "huge integer": ({"instances": [{**ROW, "income": 10**400}]}, "'income'"),
    "list for a value": ({"instances": [{**ROW, "age": [1]}]}, "'age'"),
}


@pytest.mark.parametrize(("payload", "named"), BAD_V1.values(), ids=list(BAD_V1.keys()))
def test_parse_v1_refuses_bad_input_naming_the_field(payload, named):
    with pytest.raises(InvalidRequestError, match=r"expected|required") as caught:
        parse_v1(payload, FEATURES)
    assert named in str(caught.value)


def _v2_with(change) -> dict:
    body = v2([ROW, ROW])
    change(body)
    return body


BAD_V2 = {
    "no inputs": ({"id": "x"}, "'inputs'"),
    "empty inputs": ({"inputs": []}, "'inputs'"),
    "unknown top-level field": ({**v2([ROW]), "input": []}, "'input'"),
    "id not a string": ({**v2([ROW]), "id": 7}, "'id'"),
    "missing input": (
        _v2_with(lambda b: b["inputs"].pop(1)),
        "missing input(s) ['income']",
    ),
    "misspelled input": (
        _v2_with(lambda b: b["inputs"][1].update(name="incom")),
        "did you mean 'income'",
    ),
    "repeated input": (
        _v2_with(lambda b: b["inputs"].append(dict(b["inputs"][0]))),
        "repeats inputs[0]",
    ),
    "wrong datatype": (
        _v2_with(lambda b: b["inputs"][0].update(datatype="INT64")),
        "inputs[0] ('age').datatype",
    ),
    "bytes for a number": (
        _v2_with(lambda b: b["inputs"][1].update(datatype="BYTES")),
        "('income').datatype",
    ),
    "shape not matching data": (
        _v2_with(lambda b: b["inputs"][0].update(shape=[3, 1])),
        "inputs[0] ('age').shape says 3 rows but data holds 2",
    ),
    "two columns": (
        _v2_with(lambda b: b["inputs"][0].update(shape=[1, 2])),
        "('age').shape",
    ),
    "zero rows": (
        _v2_with(lambda b: [t.update(shape=[0, 1], data=[]) for t in b["inputs"]]),
        "at least one row",
    ),
    "rows differ between inputs": (
        _v2_with(lambda b: b["inputs"][2].update(shape=[1, 1], data=["north"])),
        "same number of rows",
    ),
    "string for a number": (
        _v2_with(lambda b: b["inputs"][1]["data"].__setitem__(1, "abc")),
        "inputs[1] ('income').data[1]",
    ),
    "nested data of the wrong width": (
        _v2_with(lambda b: b["inputs"][0].update(data=[[1, 2], [3, 4]])),
        "('age').data[0]",
    ),
    "binary data requested": (
        {**v2([ROW]), "parameters": {"binary_data_output": True}},
        "binary_data_output",
    ),
    "unknown output": ({**v2([ROW]), "outputs": [{"name": "proba"}]}, "outputs[0]"),
    "misspelled tensor field": (
        _v2_with(lambda b: b["inputs"][0].update(datatyp="FP32")),
        "did you mean 'datatype'",
    ),
}


@pytest.mark.parametrize(("payload", "named"), BAD_V2.values(), ids=list(BAD_V2.keys()))
def test_parse_v2_refuses_bad_input_naming_the_field(payload, named):
    with pytest.raises(InvalidRequestError) as caught:
        parse_v2(payload, FEATURES)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b'{"instances": [', "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"a": NaN', "not valid JSON"),
        (b'["\\ud800 NaN"]', "not valid JSON"),
    ],
)
def test_decode_json_refuses_malformed_bodies(body, named):
    with pytest.raises(InvalidRequestError, match=named):
        decode_json(body)


@pytest.mark.parametrize(
    "value", [None, "text/plain", "application/x-www-form-urlencoded", "json"]
)
def test_check_content_type_refuses_missing_or_non_json(value):
    with pytest.raises(UnsupportedMediaTypeError, match="Content-Type"):
        check_content_type(value)


def test_check_content_type_accepts_json_with_parameters():
    check_content_type("Application/JSON; charset=utf-8")


# --- property-based fuzzing -------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["age", "income", "region", "north", "FP32", "BYTES"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                ["instances", "inputs", "name", "shape", "datatype", "data", "id"]
            )
            | st.text(max_size=6),
            children,
            max_size=5,
        )
    ),
    max_leaves=25,
)
cell = st.none() | st.integers() | st.floats() | st.text(max_size=6) | st.booleans()


def _check_outcome(parse, payload) -> None:
    """Either a consistent Batch or a RequestError; nothing else may escape."""
    try:
        batch = parse(payload, FEATURES)
    except RequestError as exc:
        message = str(exc)
        assert message, "a request error must say what is wrong"
        return
    assert isinstance(batch, Batch)
    assert batch.rows >= 1
    for feature in FEATURES:
        column = batch.feeds[feature.name]
        assert column.shape == (batch.rows, 1)
        if feature.kind == "numeric":
            assert column.dtype == np.float32
            assert not np.isinf(column).any()
        else:
            assert all(isinstance(value, str) for value in column[:, 0])


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fuzz_any_json_value_is_parsed_or_refused(payload):
    _check_outcome(parse_v1, payload)
    _check_outcome(parse_v2, payload)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from([*ROW, "x"]), cell), max_size=4))
def test_fuzz_v1_rows_of_random_cells(instances):
    _check_outcome(parse_v1, {"instances": instances})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "name": st.sampled_from(["age", "income", "region", "other"]),
                "datatype": st.sampled_from(["FP32", "FP64", "BYTES", "INT64", 3]),
                "shape": st.lists(st.integers(-1, 3), max_size=3),
                "data": st.lists(cell | st.lists(cell, max_size=2), max_size=4),
            }
        ),
        max_size=4,
    )
)
def test_fuzz_v2_tensors_of_random_shapes_and_types(inputs):
    _check_outcome(parse_v2, {"inputs": inputs})


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_fuzz_bytes_decode_to_json_or_are_refused(body):
    try:
        value = decode_json(body)
    except InvalidRequestError:
        return
    orjson.dumps(value)  # whatever is accepted is plain JSON data
    json.dumps(value)
