"""`CompiledSegment.on_append`: which appended events can change a segment's result
(`segment_rules._append`); the engine's agreement with full evaluation is
`tests/streams/engine/test_append_effects.py`."""

from __future__ import annotations

from typing import Any

import pytest

from segment_rules import compile_segment


def _effect(where: dict[str, Any], event: str = "buy") -> Any:
    segment = compile_segment({"id": "s", "name": "s", "rules": [{"where": where}]})
    return segment.on_append[event]


def _agg(agg: str, op: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"event": "buy", "agg": agg, "op": op, "value": value, **extra}


@pytest.mark.parametrize(
    ("where", "props", "member", "expected"),
    [
        (_agg("count", "gte", 3), {}, True, False),  # one more: a member stays
        (_agg("count", "gte", 3), {}, False, True),
        (_agg("count", "lt", 3), {}, False, False),  # an outsider stays out
        (_agg("count", "lt", 3), {}, True, True),
        (_agg("sum", "gt", 9, prop="n"), {"n": 2}, True, False),
        (_agg("sum", "gt", 9, prop="n"), {"n": -2}, True, True),
        (_agg("sum", "gt", 9, prop="n"), {"n": -2}, False, False),
        (_agg("sum", "gt", 9, prop="n"), {"n": "2"}, False, False),  # not taken in
        (_agg("sum", "gt", 9, prop="n"), {"n": float("nan")}, True, True),
        (_agg("max", "gt", 9, prop="n"), {"n": 1}, True, False),
        (_agg("max", "lt", 9, prop="n"), {"n": 1}, False, True),  # from none: may enter
        (_agg("min", "lt", 9, prop="n"), {"n": 50}, True, False),
        (_agg("avg", "gt", 9, prop="n"), {"n": 50}, True, True),
        (_agg("count", "gte", 1, filter={"prop": "c", "op": "eq", "value": "a"}), {}, False, False),
        (_agg("count", "eq", 1), {}, True, True),
    ],
)
def test_can_change(
    where: dict[str, Any], props: dict[str, Any], member: bool, expected: bool
) -> None:
    assert _effect(where).can_change(props, member) is expected


def test_a_group_knows_only_what_its_aggregates_take_in() -> None:
    where = {
        "all": [
            _agg("count", "gte", 3),
            {"event": "visit", "agg": "count", "op": "gte", "value": 1, "within": "1h"},
        ]
    }
    buy = _effect(where)
    assert buy.can_change({}, True)  # in a group: no direction is sure
    assert buy.windows == ()
    visit = _effect(where, "visit")
    assert [w for w, _, _ in visit.windows] == [3_600_000]
