"""Parse and validate a JSON segment definition into the typed tree.

Every problem raises :class:`DefinitionError` with a stable ``code`` and the
``path`` of the offending node (``rules[0].where.all[2].op``).
"""

from __future__ import annotations

__all__ = ["SLUG_RE", "parse_definition"]

import math
from collections.abc import Iterable, Mapping
from typing import Final, NoReturn

from ._expansion import parse_expansion
from ._suggest import suggest
from ._values import DURATION_RE, SLUG_RE, date_to_ms, duration_to_ms, is_number, scalar_kind
from .errors import DefinitionError, ErrorCode
from .limits import DEFAULT_LIMITS, Limits
from .model import (
    AGGREGATE_OPS,
    AGGREGATES,
    ATTRIBUTE_OPS,
    RULE_OPS,
    SEGMENT_TYPES,
    AllOf,
    AnyOf,
    AttrCondition,
    Condition,
    EventCondition,
    InSegment,
    Not,
    PropCondition,
    Rule,
    Scalar,
    SegmentDefinition,
    Value,
)

_MAX_NAME: Final = 200
_TOP_FIELDS: Final = ("id", "name", "description", "tags", "type", "rules", "expansion", "members")
_EXPANSION_ONLY: Final = ("expansion", "members")
_RULE_FIELDS: Final = ("where", "op")
_COND_SHAPES: Final = ("all", "any", "not", "attr", "event", "in_segment")
_FILTER_SHAPES: Final = ("all", "any", "not", "prop")
_EVENT_FIELDS: Final = ("event", "agg", "prop", "filter", "within", "op", "value")
_NO_VALUE_OPS: Final = frozenset({"exists", "not_exists"})
_EXAMPLE_COND: Final = '{"attr": "country", "op": "eq", "value": "DE"}'
_EXAMPLE_PROP: Final = '{"prop": "amount", "op": "gt", "value": 10}'


def parse_definition(obj: object, limits: Limits = DEFAULT_LIMITS) -> SegmentDefinition:
    """Validate ``obj`` (decoded JSON) and return the typed definition.

    Raises:
        DefinitionError: on the first problem found, with its ``code`` and ``path``.
    """
    return _Parser(limits).definition(obj)


def _fail(code: ErrorCode, message: str, path: str, suggestion: str | None = None) -> NoReturn:
    raise DefinitionError(code, message, path, suggestion)


def _at(path: str) -> str:
    return f"at {path}" if path else "at the top level"


def _key(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _describe(value: object) -> str:
    """The JSON type of ``value`` for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _one_of(options: Iterable[str]) -> str:
    return ", ".join(repr(o) for o in options)


def _check_fields(obj: Mapping[str, object], allowed: tuple[str, ...], path: str) -> None:
    for key in obj:
        if key not in allowed:
            name = key if isinstance(key, str) else repr(key)
            hint = suggest(str(key), allowed)
            fix = f"did you mean {hint!r}?" if hint else f"allowed fields: {_one_of(allowed)}"
            _fail(
                "unknown_field",
                f"unknown field {key!r} {_at(_key(path, name))}; {fix}",
                _key(path, name),
                hint,
            )


def _require(obj: Mapping[str, object], key: str, path: str, what: str) -> object:
    if key not in obj:
        _fail("missing_field", f"missing field {key!r} {_at(path)}; add {what}", _key(path, key))
    return obj[key]


def _string(value: object, path: str, what: str) -> str:
    if not isinstance(value, str):
        _fail(
            "wrong_type",
            f"expected {what} {_at(path)}, got {_describe(value)} {value!r}",
            path,
        )
    if not value.strip():
        _fail("invalid_value", f"{what} {_at(path)} must not be empty, got {value!r}", path)
    return value


def _slug(value: object, path: str) -> str:
    text = _string(value, path, "a segment id (string)")
    if not SLUG_RE.fullmatch(text):
        _fail(
            "invalid_value",
            f"invalid segment id {text!r} {_at(path)}; expected 1-64 characters of lowercase "
            "letters, digits, '_' or '-', starting with a letter or digit, e.g. 'vip-de'",
            path,
        )
    return text


def _number(value: object, path: str) -> int | float:
    if not is_number(value):
        _fail(
            "wrong_type", f"expected a number {_at(path)}, got {_describe(value)} {value!r}", path
        )
    assert isinstance(value, int | float)
    if isinstance(value, float) and not math.isfinite(value):
        _fail("invalid_value", f"expected a finite number {_at(path)}, got {value!r}", path)
    return value


def _scalar(value: object, path: str) -> Scalar:
    if isinstance(value, bool | str):
        return value
    if is_number(value):
        return _number(value, path)
    hint = "; use 'exists'/'not_exists' to test for a missing value" if value is None else ""
    _fail(
        "wrong_type",
        f"expected a string, number or boolean {_at(path)}, got {_describe(value)} {value!r}{hint}",
        path,
    )


def _between(value: object, path: str) -> tuple[int | float, int | float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        _fail(
            "wrong_type",
            f"expected [lo, hi] (two numbers) {_at(path)}, got {_describe(value)} {value!r}",
            path,
        )
    lo = _number(value[0], f"{path}[0]")
    hi = _number(value[1], f"{path}[1]")
    if lo > hi:
        _fail(
            "invalid_value",
            f"between bounds {_at(path)} are reversed: {lo!r} > {hi!r}; write [{hi!r}, {lo!r}]",
            path,
        )
    return (lo, hi)


def _scalar_list(value: object, path: str) -> tuple[Scalar, ...]:
    if not isinstance(value, list | tuple):
        _fail(
            "wrong_type",
            f"expected a list of strings, numbers or booleans {_at(path)}, got "
            f"{_describe(value)} {value!r}",
            path,
        )
    if not value:
        _fail("invalid_value", f"empty list {_at(path)}; give at least one value", path)
    items = tuple(_scalar(item, f"{path}[{i}]") for i, item in enumerate(value))
    kinds = {scalar_kind(item) for item in items}
    if len(kinds) > 1:
        _fail(
            "invalid_value",
            f"mixed value types {_at(path)}: {list(items)!r}; all values must be of one kind "
            f"(found {', '.join(sorted(k for k in kinds if k))}) since types are never coerced",
            path,
        )
    return items


def _date(value: object, path: str) -> str | int:
    if isinstance(value, str):
        if date_to_ms(value) is None:
            _fail(
                "invalid_value",
                f"invalid date {value!r} {_at(path)}; expected ISO-8601 such as "
                "'2024-05-01' or '2024-05-01T12:00:00Z', or epoch milliseconds",
                path,
            )
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    _fail(
        "wrong_type",
        f"expected a date (ISO-8601 string or integer epoch milliseconds) {_at(path)}, "
        f"got {_describe(value)} {value!r}",
        path,
    )


class _Parser:
    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._leaves = 0
        self._segment_id = ""

    def duration(self, value: object, path: str) -> str:
        if not isinstance(value, str):
            _fail(
                "wrong_type",
                f"expected a duration string like '7d' {_at(path)}, got {_describe(value)} "
                f"{value!r}",
                path,
            )
        ms = duration_to_ms(value)
        if ms is None:
            fixed = value.strip().lower().replace(" ", "")
            hint = f"; did you mean {fixed!r}?" if DURATION_RE.fullmatch(fixed) else ""
            _fail(
                "bad_duration",
                f"invalid duration {value!r} {_at(path)}; expected a positive whole number "
                f"followed by s, m, h, d or w, e.g. '30m' or '7d'{hint}",
                path,
            )
        if ms > self._limits.max_window_ms:
            _fail(
                "limit_exceeded",
                f"duration {value!r} {_at(path)} is longer than the event history retention "
                f"({self._limits.max_window_ms} ms); results would silently be wrong, use a "
                "shorter window",
                path,
            )
        return value

    def definition(self, obj: object) -> SegmentDefinition:
        if not isinstance(obj, Mapping):
            _fail(
                "invalid_definition",
                f"a segment definition must be a JSON object, got {_describe(obj)} {obj!r}",
                "",
            )
        _check_fields(obj, _TOP_FIELDS, "")
        self._segment_id = _slug(_require(obj, "id", "", "an 'id' such as 'vip-de'"), "id")
        name = _string(_require(obj, "name", "", "a 'name'"), "name", "a name (string)")
        if len(name) > _MAX_NAME:
            _fail(
                "invalid_value",
                f"name at name is {len(name)} characters long; keep it to {_MAX_NAME}",
                "name",
            )
        description = obj.get("description")
        if description is not None and not isinstance(description, str):
            _fail(
                "wrong_type",
                f"expected a string at description, got {_describe(description)} {description!r}",
                "description",
            )
        tags = self.tags(obj.get("tags", []))
        seg_type = obj.get("type", "dynamic")
        if seg_type not in SEGMENT_TYPES:
            hint = suggest(seg_type, SEGMENT_TYPES) if isinstance(seg_type, str) else None
            fix = f"did you mean {hint!r}?" if hint else f"expected one of {_one_of(SEGMENT_TYPES)}"
            _fail(
                "invalid_value", f"unknown segment type {seg_type!r} at type; {fix}", "type", hint
            )
        if seg_type == "expansion":
            expansion, members = parse_expansion(obj)
            return SegmentDefinition(
                id=self._segment_id,
                name=name,
                rules=(),
                description=description,
                tags=tags,
                type="expansion",
                expansion=expansion,
                members=members,
            )
        for key in _EXPANSION_ONLY:
            if key in obj:
                _fail(
                    "unknown_field",
                    f"field {key!r} at {key} belongs to expansion segments only (type "
                    f"{seg_type!r})",
                    key,
                )
        rules = self.rules(_require(obj, "rules", "", "a non-empty 'rules' list"))
        return SegmentDefinition(
            id=self._segment_id,
            name=name,
            rules=rules,
            description=description,
            tags=tags,
            type=str(seg_type),
        )

    def tags(self, value: object) -> tuple[str, ...]:
        if not isinstance(value, list | tuple):
            _fail(
                "wrong_type",
                f"expected a list of strings at tags, got {_describe(value)} {value!r}",
                "tags",
            )
        for i, tag in enumerate(value):
            if not isinstance(tag, str):
                _fail(
                    "wrong_type",
                    f"expected a string at tags[{i}], got {_describe(tag)} {tag!r}",
                    f"tags[{i}]",
                )
        return tuple(value)

    def rules(self, value: object) -> tuple[Rule, ...]:
        if not isinstance(value, list | tuple):
            _fail(
                "wrong_type",
                f"expected a list of rules at rules, got {_describe(value)} {value!r}",
                "rules",
            )
        if not value:
            _fail(
                "invalid_value",
                'empty rules at rules; add at least one rule like {"where": ' + _EXAMPLE_COND + "}",
                "rules",
            )
        if len(value) > self._limits.max_rules:
            _fail(
                "limit_exceeded",
                f"{len(value)} rules at rules; at most {self._limits.max_rules} are allowed, "
                "merge rules with 'any'/'all'",
                "rules",
            )
        return tuple(self.rule(item, i) for i, item in enumerate(value))

    def rule(self, obj: object, index: int) -> Rule:
        path = f"rules[{index}]"
        if not isinstance(obj, Mapping):
            _fail(
                "wrong_type",
                f'expected a rule object like {{"where": ...}} at {path}, got '
                f"{_describe(obj)} {obj!r}",
                path,
            )
        _check_fields(obj, _RULE_FIELDS, path)
        op: str | None = None
        if index == 0:
            if "op" in obj:
                _fail(
                    "invalid_value",
                    f"the first rule cannot have an 'op' (got {obj['op']!r} at {path}.op); "
                    "it starts the result, remove 'op'",
                    f"{path}.op",
                )
        else:
            raw = _require(obj, "op", path, f"an 'op', one of {_one_of(RULE_OPS)}")
            op = self.op(raw, f"{path}.op", RULE_OPS, "rule operator")
        where = self.condition(
            _require(obj, "where", path, "a 'where' condition"), f"{path}.where", 0, in_filter=False
        )
        return Rule(where=where, op=op)

    def op(self, value: object, path: str, allowed: tuple[str, ...], what: str) -> str:
        if not isinstance(value, str):
            _fail(
                "wrong_type",
                f"expected {what} (string) {_at(path)}, got {_describe(value)} {value!r}",
                path,
            )
        if value not in allowed:
            hint = suggest(value, allowed)
            fix = f"did you mean {hint!r}?" if hint else f"expected one of {_one_of(allowed)}"
            _fail("unknown_op", f"unknown {what} {value!r} {_at(path)}; {fix}", path, hint)
        return value

    def leaf_counted(self, path: str) -> None:
        self._leaves += 1
        if self._leaves > self._limits.max_conditions:
            _fail(
                "limit_exceeded",
                f"too many conditions: the one {_at(path)} is number {self._leaves}, at most "
                f"{self._limits.max_conditions} are allowed (filters included); split the "
                "segment or use 'in' lists",
                path,
            )

    def condition(self, obj: object, path: str, depth: int, *, in_filter: bool) -> Condition:
        example = _EXAMPLE_PROP if in_filter else _EXAMPLE_COND
        if not isinstance(obj, Mapping):
            _fail(
                "wrong_type",
                f"expected a condition object like {example} {_at(path)}, got "
                f"{_describe(obj)} {obj!r}",
                path,
            )
        shapes = _FILTER_SHAPES if in_filter else _COND_SHAPES
        present = [shape for shape in shapes if shape in obj]
        if not present:
            self.no_shape(obj, path, shapes, in_filter)
        if len(present) > 1:
            _fail(
                "invalid_definition",
                f"condition {_at(path)} mixes {present[0]!r} and {present[1]!r}; a condition "
                f'has exactly one shape, nest them in {{"all": [...]}} instead',
                path,
            )
        shape = present[0]
        if shape in ("all", "any"):
            return self.group(obj, shape, path, depth, in_filter=in_filter)
        if shape == "not":
            _check_fields(obj, ("not",), path)
            self.nested(path, depth)
            inner = self.condition(obj["not"], f"{path}.not", depth + 1, in_filter=in_filter)
            return Not(inner)
        if shape == "in_segment":
            _check_fields(obj, ("in_segment",), path)
            sub = f"{path}.in_segment"
            segment = _slug(obj["in_segment"], sub)
            self.leaf_counted(path)
            if segment == self._segment_id:
                _fail(
                    "cycle",
                    f"segment {segment!r} refers to itself {_at(sub)}: {segment} -> {segment}; "
                    "remove the in_segment condition",
                    sub,
                )
            return InSegment(segment)
        if shape == "event":
            return self.event(obj, path, depth)
        return self.leaf(obj, shape, path)

    def no_shape(
        self, obj: Mapping[str, object], path: str, shapes: tuple[str, ...], in_filter: bool
    ) -> NoReturn:
        if in_filter and "attr" in obj:
            _fail(
                "unknown_field",
                f"unknown field 'attr' {_at(_key(path, 'attr'))}; filters test event "
                "properties, did you mean 'prop'?",
                _key(path, "attr"),
                "prop",
            )
        if not in_filter and "prop" in obj:
            _fail(
                "unknown_field",
                f"unknown field 'prop' {_at(_key(path, 'prop'))}; 'prop' is only for event "
                "filters, did you mean 'attr'?",
                _key(path, "prop"),
                "attr",
            )
        known = (*shapes, "op", "value")
        _check_fields(obj, known, path)
        _fail(
            "missing_field",
            f"condition {_at(path)} has none of {_one_of(shapes)}; add one, e.g. "
            + (_EXAMPLE_PROP if in_filter else _EXAMPLE_COND),
            path,
        )

    def nested(self, path: str, depth: int) -> None:
        if depth + 1 > self._limits.max_depth:
            _fail(
                "limit_exceeded",
                f"conditions nested too deep {_at(path)}: level {depth + 1}, at most "
                f"{self._limits.max_depth} levels of all/any/not are allowed; flatten the "
                "condition",
                path,
            )

    def group(
        self, obj: Mapping[str, object], shape: str, path: str, depth: int, *, in_filter: bool
    ) -> Condition:
        _check_fields(obj, (shape,), path)
        self.nested(path, depth)
        sub = f"{path}.{shape}"
        items = obj[shape]
        if not isinstance(items, list | tuple):
            _fail(
                "wrong_type",
                f"expected a list of conditions {_at(sub)}, got {_describe(items)} {items!r}",
                sub,
            )
        if not items:
            _fail(
                "invalid_value",
                f"empty {shape!r} list {_at(sub)}; give at least one condition",
                sub,
            )
        conds = tuple(
            self.condition(item, f"{sub}[{i}]", depth + 1, in_filter=in_filter)
            for i, item in enumerate(items)
        )
        return AllOf(conds) if shape == "all" else AnyOf(conds)

    def leaf(self, obj: Mapping[str, object], shape: str, path: str) -> Condition:
        _check_fields(obj, (shape, "op", "value"), path)
        what = "an attribute name" if shape == "attr" else "a property name"
        name = _string(obj[shape], f"{path}.{shape}", what)
        raw_op = _require(obj, "op", path, f"an 'op', one of {_one_of(ATTRIBUTE_OPS)}")
        op = self.op(raw_op, f"{path}.op", ATTRIBUTE_OPS, "operator")
        value = self.value(obj, op, path)
        self.leaf_counted(path)
        if shape == "attr":
            return AttrCondition(name, op, value)
        return PropCondition(name, op, value)

    def value(self, obj: Mapping[str, object], op: str, path: str) -> Value:
        sub = f"{path}.value"
        if op in _NO_VALUE_OPS:
            if "value" in obj:
                _fail(
                    "unknown_field",
                    f"operator {op!r} takes no value, got {obj['value']!r} {_at(sub)}; "
                    "remove 'value'",
                    sub,
                )
            return None
        raw = _require(obj, "value", path, f"a 'value' for operator {op!r}")
        if op in ("eq", "ne", "contains", "not_contains"):
            return _scalar(raw, sub)
        if op in ("lt", "lte", "gt", "gte"):
            return _number(raw, sub)
        if op == "between":
            return _between(raw, sub)
        if op in ("in", "not_in"):
            return _scalar_list(raw, sub)
        if op in ("starts_with", "ends_with"):
            if not isinstance(raw, str):
                _fail(
                    "wrong_type",
                    f"operator {op!r} needs a string {_at(sub)}, got {_describe(raw)} {raw!r}",
                    sub,
                )
            return raw
        if op in ("before", "after"):
            return _date(raw, sub)
        return self.duration(raw, sub)  # within_last, not_within_last

    def event(self, obj: Mapping[str, object], path: str, depth: int) -> EventCondition:
        _check_fields(obj, _EVENT_FIELDS, path)
        event = _string(obj["event"], f"{path}.event", "an event type")
        raw_agg = _require(obj, "agg", path, f"an 'agg', one of {_one_of(AGGREGATES)}")
        agg = self.op(raw_agg, f"{path}.agg", AGGREGATES, "aggregate")
        prop: str | None = None
        if agg == "count":
            if "prop" in obj:
                _fail(
                    "unknown_field",
                    f"'prop' is not used by agg 'count' (got {obj['prop']!r} at {path}.prop); "
                    "count counts events: remove 'prop', or use 'distinct_count' to count "
                    "distinct values",
                    f"{path}.prop",
                )
        else:
            raw_prop = _require(obj, "prop", path, f"the 'prop' that {agg!r} aggregates")
            prop = _string(raw_prop, f"{path}.prop", "a property name")
        self.leaf_counted(path)
        within = None
        if "within" in obj:
            within = self.duration(obj["within"], f"{path}.within")
        filt = None
        if "filter" in obj:
            filt = self.condition(obj["filter"], f"{path}.filter", depth, in_filter=True)
        raw_op = _require(obj, "op", path, f"an 'op', one of {_one_of(AGGREGATE_OPS)}")
        if raw_op in ATTRIBUTE_OPS and raw_op not in AGGREGATE_OPS:
            _fail(
                "unknown_op",
                f"operator {raw_op!r} cannot compare an aggregate {_at(path + '.op')}; "
                f"expected one of {_one_of(AGGREGATE_OPS)}",
                f"{path}.op",
            )
        op = self.op(raw_op, f"{path}.op", AGGREGATE_OPS, "operator")
        raw = _require(obj, "value", path, "a numeric 'value'")
        sub = f"{path}.value"
        value = _between(raw, sub) if op == "between" else _number(raw, sub)
        return EventCondition(event, agg, op, value, prop, filt, within)
