"""segment.schema.json accepts the documented examples and rejects bad shapes.

Every generated valid definition is also checked against the schema in
test_compile_properties.py.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import jsonschema
import pytest

from segment_rules import DefinitionError, parse_definition

SCHEMA = json.loads(resources.files("segment_rules").joinpath("segment.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

EXAMPLES: list[dict[str, Any]] = [
    {
        "id": "vip",
        "name": "VIP customers",
        "rules": [{"where": {"attr": "lifetime_value", "op": "gte", "value": 1000}}],
    },
    {
        "id": "active-de",
        "name": "Active in Germany",
        "tags": ["de"],
        "type": "static",
        "rules": [
            {"where": {"all": [
                {"attr": "country", "op": "in", "value": ["DE", "AT"]},
                {"any": [{"attr": "last_login", "op": "within_last", "value": "7d"},
                         {"not": {"attr": "email", "op": "not_exists"}}]},
            ]}},
            {"op": "union", "where": {"event": "purchase", "agg": "sum", "prop": "amount",
                                      "filter": {"prop": "currency", "op": "eq", "value": "EUR"},
                                      "within": "30d", "op": "gt", "value": 100}},
            {"op": "except", "where": {"in_segment": "churned"}},
        ],
    },
]  # fmt: skip


def test_schema_is_valid_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e["id"])
def test_examples_are_valid(example: dict[str, Any]) -> None:
    VALIDATOR.validate(example)
    parse_definition(example)


def where(cond: Any) -> dict[str, Any]:
    return {"id": "x", "name": "x", "rules": [{"where": cond}]}


BAD: list[Any] = [
    [],
    {"id": "x", "name": "x"},
    {"id": "Bad Id", "name": "x", "rules": [{"where": {"in_segment": "a"}}]},
    {"id": "x", "name": "", "rules": [{"where": {"in_segment": "a"}}]},
    {"id": "x", "name": "x", "rules": []},
    {"id": "x", "name": "x", "extra": 1, "rules": [{"where": {"in_segment": "a"}}]},
    {"id": "x", "name": "x", "rules": [{"op": "union", "where": {"in_segment": "a"}}]},
    {"id": "x", "name": "x", "rules": [{"where": {"in_segment": "a"}},
                                       {"where": {"in_segment": "b"}}]},
    where({"attr": "a", "op": "equals", "value": 1}),
    where({"attr": "a", "op": "gt", "value": "1"}),
    where({"attr": "a", "op": "exists", "value": 1}),
    where({"attr": "a", "op": "in", "value": []}),
    where({"attr": "a", "op": "within_last", "value": "7 days"}),
    where({"attr": "a", "op": "eq", "value": 1, "attr2": 1}),
    where({"all": []}),
    where({"all": [{"in_segment": "a"}], "any": [{"in_segment": "a"}]}),
    where({"event": "e", "agg": "count", "prop": "p", "op": "gt", "value": 1}),
    where({"event": "e", "agg": "sum", "op": "gt", "value": 1}),
    where({"event": "e", "agg": "count", "op": "in", "value": [1]}),
    where({"event": "e", "agg": "count", "op": "between", "value": 1}),
    where({"event": "e", "agg": "count", "op": "gt", "value": 1,
           "filter": {"attr": "a", "op": "exists"}}),
]  # fmt: skip


@pytest.mark.parametrize("bad", BAD)
def test_bad_definitions_are_rejected_by_schema_and_parser(bad: Any) -> None:
    assert not VALIDATOR.is_valid(bad)
    with pytest.raises(DefinitionError):
        parse_definition(bad)
