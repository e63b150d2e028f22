"""The parts of an ``expansion`` segment's definition: its ``expansion`` and ``members``.

An expansion segment (similar customers) holds an explicit list of customers with their
scores instead of ``rules``::

    {"id": "vip-similar", "name": "Similar to VIP", "type": "expansion",
     "expansion": {"source": "vip", "size": 200, "min_score": 0.4, "attributes": null},
     "members": {"c-17": 0.93, "c-4": 0.71}}

``expansion`` may carry what the last training found (``auc``, ``grade``, ``trained_at``,
``job_id``, ``features``, ``bands``); those are kept as written and not checked.
"""

from __future__ import annotations

__all__ = ["EXPANSION_FIELDS", "parse_expansion"]

import math
from collections.abc import Mapping
from typing import Final, NoReturn

from ._values import SLUG_RE, is_number
from .errors import DefinitionError, ErrorCode
from .model import MAX_EXPANSION_MEMBERS, Expansion

EXPANSION_FIELDS: Final = (
    "source",
    "size",
    "min_score",
    "attributes",
    "auc",
    "grade",
    "trained_at",
    "job_id",
    "features",
    "bands",
)


def _fail(code: ErrorCode, message: str, path: str) -> NoReturn:
    raise DefinitionError(code, message, path)


def _describe(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _string(value: object, path: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        _fail("wrong_type", f"expected {what} at {path}, got {_describe(value)} {value!r}", path)
    return value


def _slug(value: object, path: str) -> str:
    text = _string(value, path, "a segment id (string)")
    if not SLUG_RE.fullmatch(text):
        _fail("invalid_value", f"invalid segment id {text!r} at {path}", path)
    return text


def _number(value: object, path: str) -> float:
    if not is_number(value) or not math.isfinite(value):  # type: ignore[arg-type]
        _fail("wrong_type", f"expected a number at {path}, got {_describe(value)} {value!r}", path)
    return float(value)  # type: ignore[arg-type]


def parse_expansion(obj: Mapping[str, object]) -> tuple[Expansion, frozenset[str]]:
    """The ``expansion`` and the member ids of an expansion segment's definition ``obj``."""
    if obj.get("rules") is not None:
        _fail(
            "invalid_value",
            "an expansion segment holds a list of customers ('members'), not rules; remove "
            "'rules' at rules",
            "rules",
        )
    raw = _object(obj.get("expansion"), "expansion", "an object with source, size and min_score")
    for key in raw:
        if key not in EXPANSION_FIELDS:
            _fail(
                "unknown_field",
                f"unknown field {key!r} at expansion.{key}; allowed: {', '.join(EXPANSION_FIELDS)}",
                f"expansion.{key}",
            )
    source = _slug(raw.get("source"), "expansion.source")
    size = raw.get("size")
    if (
        not isinstance(size, int)
        or isinstance(size, bool)
        or not 1 <= size <= MAX_EXPANSION_MEMBERS
    ):
        _fail(
            "invalid_value",
            f"expected a whole number 1..{MAX_EXPANSION_MEMBERS} at expansion.size, got {size!r}",
            "expansion.size",
        )
    min_score = _number(raw.get("min_score"), "expansion.min_score")
    if not 0 <= min_score <= 1:
        _fail(
            "invalid_value",
            f"expected a score 0..1 at expansion.min_score, got {min_score!r}",
            "expansion.min_score",
        )
    attributes = raw.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, list | tuple):
            _fail(
                "wrong_type",
                f"expected a list of attribute names or null at expansion.attributes, got "
                f"{_describe(attributes)}",
                "expansion.attributes",
            )
        for i, name in enumerate(attributes):
            _string(name, f"expansion.attributes[{i}]", "an attribute name")
    return (
        Expansion(
            source, size, float(min_score), None if attributes is None else tuple(attributes)
        ),
        _members(obj.get("members")),
    )


def _object(raw: object, field: str, what: str) -> Mapping[str, object]:
    if not isinstance(raw, Mapping):
        _fail(
            "missing_field" if raw is None else "wrong_type",
            f"an expansion segment needs {field!r} at {field}: {what}, got {_describe(raw)}",
            field,
        )
    return raw


def _members(value: object) -> frozenset[str]:
    raw = _object(value, "members", "an object of customer id -> score 0..1")
    if len(raw) > MAX_EXPANSION_MEMBERS:
        _fail(
            "limit_exceeded",
            f"{len(raw)} members at members; an expansion segment holds at most "
            f"{MAX_EXPANSION_MEMBERS}",
            "members",
        )
    for customer_id, score in raw.items():
        path = f"members.{customer_id}"
        _string(customer_id, "members", "a customer id")
        value = _number(score, path)
        if not 0 <= value <= 1:
            _fail("invalid_value", f"expected a score 0..1 at {path}, got {value!r}", path)
    return frozenset(raw)
