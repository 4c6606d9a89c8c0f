"""`x-mcp-header` annotations: which are valid, and what each maps to (server/tools.mdx § x-mcp-header)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_sse_proxy.protocol.headers import validate_x_mcp_headers

inbound = pytest.importorskip("mcp.shared.inbound")


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def prop(kind: Any, header: Any = None, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind, **extra}
    if header is not None:
        schema["x-mcp-header"] = header
    return schema


VALID: list[tuple[str, Any, dict[str, list[str]]]] = [
    ("no schema", None, {}),
    ("no annotations", obj(q=prop("string")), {}),
    (
        "spec example",
        obj(region=prop("string", "Region", description="The region"), query=prop("string")),
        {"Region": ["region"]},
    ),
    ("integer", obj(n=prop("integer", "Count")), {"Count": ["n"]}),
    ("boolean", obj(b=prop("boolean", "Dry-Run")), {"Dry-Run": ["b"]}),
    ("nested properties", obj(outer=obj(inner=prop("string", "Tenant"))), {"Tenant": ["outer", "inner"]}),
    (
        "several, distinct ignoring case",
        obj(a=prop("string", "A"), b=prop("string", "B"), c=obj(d=prop("integer", "C-D"))),
        {"A": ["a"], "B": ["b"], "C-D": ["c", "d"]},
    ),
    ("every tchar", obj(a=prop("string", "!#$%&'*+-.^_`|~09azAZ")), {"!#$%&'*+-.^_`|~09azAZ": ["a"]}),
    ("nullable string", obj(a=prop(["string", "null"], "A")), {"A": ["a"]}),
    ("enum of strings", obj(a=prop("string", "A", enum=["x", "y"])), {"A": ["a"]}),
    # Data keywords are not schema positions: an `x-mcp-header` key inside them is just data.
    ("annotation-shaped default", obj(a=prop("object", default={"x-mcp-header": "X"})), {}),
    ("annotation-shaped const", obj(a={"const": {"x-mcp-header": "X"}}), {}),
    ("annotation-shaped examples", obj(a=prop("object", examples=[{"x-mcp-header": "X"}])), {}),
    # A property merely *named* like the keyword is not an annotation.
    ("property named x-mcp-header", obj(**{"x-mcp-header": prop("string")}), {}),
    (
        "ref on a sibling keyword is not crossed",
        obj(a=prop("string", "A", **{"$ref": "#/$defs/s"})),
        {"A": ["a"]},
    ),
]


@pytest.mark.parametrize(("case", "schema", "expected"), VALID, ids=[c[0] for c in VALID])
def test_valid(case: str, schema: Any, expected: dict[str, list[str]]) -> None:
    assert validate_x_mcp_headers(schema) == expected


INVALID: list[tuple[str, Any, str]] = [
    ("number type", obj(a=prop("number", "A")), "not string, integer or boolean"),
    ("object type", obj(a=prop("object", "A")), "not string, integer or boolean"),
    ("array type", obj(a=prop("array", "A")), "not string, integer or boolean"),
    ("no type", obj(a={"x-mcp-header": "A"}), "not string, integer or boolean"),
    ("type list of two primitives", obj(a=prop(["string", "integer"], "A")), "not string"),
    ("number or null", obj(a=prop(["number", "null"], "A")), "not string"),
    ("empty name", obj(a=prop("string", "")), "not an HTTP token"),
    ("space in name", obj(a=prop("string", "My Header")), "not an HTTP token"),
    ("colon in name", obj(a=prop("string", "X:Y")), "not an HTTP token"),
    ("CRLF in name", obj(a=prop("string", "X\r\nInjected: 1")), "not an HTTP token"),
    ("non-ASCII name", obj(a=prop("string", "Région")), "not an HTTP token"),
    ("slash in name", obj(a=prop("string", "a/b")), "not an HTTP token"),
    ("non-string name", obj(a=prop("string", 7)), "not an HTTP token"),
    ("duplicate", obj(a=prop("string", "Region"), b=prop("string", "Region")), "repeats"),
    ("duplicate ignoring case", obj(a=prop("string", "Region"), b=prop("integer", "REGION")), "repeats"),
    ("duplicate in nested", obj(a=prop("string", "T"), o=obj(b=prop("string", "t"))), "repeats"),
    ("on the root", {"type": "string", "x-mcp-header": "Root"}, "schema root"),
    ("inside items", obj(a={"type": "array", "items": prop("string", "A")}), "not reachable"),
    ("inside tuple items", obj(a={"type": "array", "items": [prop("string", "A")]}), "not reachable"),
    ("inside prefixItems", obj(a={"type": "array", "prefixItems": [prop("string", "A")]}), "not reachable"),
    (
        "inside items of object",
        obj(a={"type": "array", "items": obj(b=prop("string", "B"))}),
        "not reachable",
    ),
    ("inside oneOf", obj(a={"oneOf": [prop("string", "A"), prop("integer")]}), "not reachable"),
    ("inside anyOf", obj(a={"anyOf": [prop("string", "A")]}), "not reachable"),
    ("inside allOf", {"allOf": [obj(a=prop("string", "A"))]}, "not reachable"),
    ("inside not", obj(a={"not": prop("string", "A")}), "not reachable"),
    ("inside if", obj(a={"if": prop("string", "A")}), "not reachable"),
    ("inside then", {"type": "object", "if": {}, "then": obj(a=prop("string", "A"))}, "not reachable"),
    ("inside else", {"type": "object", "if": {}, "else": obj(a=prop("string", "A"))}, "not reachable"),
    (
        "in $defs behind $ref",
        {**obj(a={"$ref": "#/$defs/r"}), "$defs": {"r": prop("string", "A")}},
        "not reachable",
    ),
    ("in definitions", {**obj(), "definitions": {"r": prop("string", "A")}}, "not reachable"),
    (
        "in additionalProperties",
        {"type": "object", "additionalProperties": prop("string", "A")},
        "not reachable",
    ),
    (
        "in patternProperties",
        {"type": "object", "patternProperties": {"^a": prop("string", "A")}},
        "not reachable",
    ),
    (
        "in dependentSchemas",
        {"type": "object", "dependentSchemas": {"a": obj(b=prop("string", "B"))}},
        "not reachable",
    ),
    ("in propertyNames", {"type": "object", "propertyNames": prop("string", "A")}, "not reachable"),
    ("in contains", obj(a={"type": "array", "contains": prop("string", "A")}), "not reachable"),
    ("in unevaluatedProperties", {"unevaluatedProperties": prop("string", "A")}, "not reachable"),
]


@pytest.mark.parametrize(("case", "schema", "reason"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid(case: str, schema: Any, reason: str) -> None:
    outcome = validate_x_mcp_headers(schema)
    assert isinstance(outcome, str)
    assert reason in outcome


def test_one_bad_annotation_invalidates_the_tool_even_beside_good_ones() -> None:
    schema = obj(ok=prop("string", "Ok"), bad=prop("number", "Bad"))
    assert isinstance(validate_x_mcp_headers(schema), str)


def test_deep_schemas_do_not_recurse() -> None:
    schema: dict[str, Any] = prop("string", "Deep")
    path = []
    for i in range(5000):
        schema = obj(**{f"p{i}": schema})
        path.append(f"p{i}")
    assert validate_x_mcp_headers(schema) == {"Deep": list(reversed(path))}


# Where we deliberately differ from the SDK's validator: a nullable primitive is accepted, and the
# draft-07 array form of `items` is walked (the SDK only walks `items` as a single schema).
SDK_DIFFERENCES = {"nullable string", "inside tuple items"}
COMPARABLE = [(c[0], c[1]) for c in [*VALID, *INVALID] if c[0] not in SDK_DIFFERENCES]


@pytest.mark.parametrize(("case", "schema"), COMPARABLE, ids=[c[0] for c in COMPARABLE])
def test_agrees_with_the_sdk(case: str, schema: Any) -> None:
    ours = validate_x_mcp_headers(schema)
    theirs = inbound.find_invalid_x_mcp_header(schema)
    assert isinstance(ours, str) == (theirs is not None)
    if not isinstance(ours, str):
        assert {name: tuple(path) for name, path in ours.items()} == {
            token: path for path, token in inbound.x_mcp_header_map(schema).items()
        }


def test_where_we_differ_from_the_sdk() -> None:
    # A nullable primitive: null sends no header, so the annotation is well defined and the tool stays usable.
    nullable = obj(a=prop(["string", "null"], "A"))
    assert validate_x_mcp_headers(nullable) == {"A": ["a"]}
    assert inbound.find_invalid_x_mcp_header(nullable) is not None
    # Tuple-form `items` (draft-07) is still `items`: an annotation there is unreachable.
    tuple_items = obj(a={"type": "array", "items": [prop("string", "A")]})
    assert isinstance(validate_x_mcp_headers(tuple_items), str)
    assert inbound.find_invalid_x_mcp_header(tuple_items) is None


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=5)
    | st.sampled_from(["x-mcp-header", "string"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["type", "properties", "items", "oneOf", "x-mcp-header", "$defs", "a", "not"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=30,
)


@given(json_values)
def test_any_json_gets_an_answer(schema: object) -> None:
    outcome = validate_x_mcp_headers(schema)
    assert isinstance(outcome, dict | str)
    if isinstance(outcome, dict):
        assert all(path for path in outcome.values())
