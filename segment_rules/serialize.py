"""Encode a parsed definition back to its JSON object."""

from __future__ import annotations

__all__ = ["condition_to_json", "definition_to_json"]

from typing import Any

from .model import (
    AllOf,
    AnyOf,
    AttrCondition,
    Condition,
    EventCondition,
    InSegment,
    Not,
    PropCondition,
    SegmentDefinition,
    Value,
)


def definition_to_json(defn: SegmentDefinition) -> dict[str, Any]:
    """The JSON object of ``defn``; ``parse_definition`` of it gives ``defn`` back."""
    out: dict[str, Any] = {"id": defn.id, "name": defn.name}
    if defn.description is not None:
        out["description"] = defn.description
    if defn.tags:
        out["tags"] = list(defn.tags)
    out["type"] = defn.type
    rules: list[dict[str, Any]] = []
    for rule in defn.rules:
        entry: dict[str, Any] = {}
        if rule.op is not None:
            entry["op"] = rule.op
        entry["where"] = condition_to_json(rule.where)
        rules.append(entry)
    out["rules"] = rules
    return out


def _value(value: Value | tuple[int | float, int | float]) -> Any:
    return list(value) if isinstance(value, tuple) else value


def condition_to_json(cond: Condition) -> dict[str, Any]:
    """The JSON object of one condition."""
    if isinstance(cond, AllOf):
        return {"all": [condition_to_json(c) for c in cond.conditions]}
    if isinstance(cond, AnyOf):
        return {"any": [condition_to_json(c) for c in cond.conditions]}
    if isinstance(cond, Not):
        return {"not": condition_to_json(cond.condition)}
    if isinstance(cond, InSegment):
        return {"in_segment": cond.segment}
    if isinstance(cond, AttrCondition | PropCondition):
        key, name = ("attr", cond.attr) if isinstance(cond, AttrCondition) else ("prop", cond.prop)
        leaf: dict[str, Any] = {key: name, "op": cond.op}
        if cond.op not in ("exists", "not_exists"):
            leaf["value"] = _value(cond.value)
        return leaf
    assert isinstance(cond, EventCondition)
    out: dict[str, Any] = {"event": cond.event, "agg": cond.agg}
    if cond.prop is not None:
        out["prop"] = cond.prop
    if cond.filter is not None:
        out["filter"] = condition_to_json(cond.filter)
    if cond.within is not None:
        out["within"] = cond.within
    out["op"] = cond.op
    out["value"] = _value(cond.value)
    return out
