"""definition_to_json: exact JSON output (the round-trip property is in
test_compile_properties.py)."""

from __future__ import annotations

from segment_rules import definition_to_json, parse_definition

FULL = {
    "id": "vip-de",
    "name": "VIP Germany",
    "description": "big spenders",
    "tags": ["vip", "de"],
    "type": "dynamic",
    "rules": [
        {"where": {"all": [{"attr": "country", "op": "eq", "value": "DE"},
                           {"attr": "email", "op": "exists"}]}},
        {"op": "except", "where": {"not": {"in_segment": "churned"}}},
        {"op": "union", "where": {"event": "buy", "agg": "avg", "prop": "amount",
                                  "filter": {"any": [{"prop": "cur", "op": "in",
                                                      "value": ["EUR", "CHF"]}]},
                                  "within": "4w", "op": "between", "value": [10, 20]}},
    ],
}  # fmt: skip


def test_writes_back_what_was_read() -> None:
    assert definition_to_json(parse_definition(FULL)) == FULL


def test_defaults_are_written_explicitly_and_empty_tags_dropped() -> None:
    minimal = {"id": "a", "name": "A", "tags": [], "rules": [{"where": {"in_segment": "b"}}]}
    assert definition_to_json(parse_definition(minimal)) == {
        "id": "a",
        "name": "A",
        "type": "dynamic",
        "rules": [{"where": {"in_segment": "b"}}],
    }
