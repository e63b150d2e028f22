"""A naive reference interpreter of the rule language, written from the spec (docs/segments.md).

It works on the raw JSON definition and a raw profile (``{"attrs": {...}, "events": {type:
[(ts, props), ...]}, "segments": {...}}``, events in any order), one rule at a time, with no
compilation, folding, sorting or bisecting: slow and obviously right. Sums and averages are
exact (:class:`~fractions.Fraction`), so the order of a customer's events cannot matter.

It also answers, on its own, *when* the result next changes with no new input
(:func:`ref_timeline`): every time-dependent test in the language is ``x > now - span`` or
``x <= now - span`` for a date ``x`` of the profile and a duration ``span`` of the definition,
so the result can only flip at an instant ``x + span``. Evaluating the reference at each of
those instants, in order, gives every change and the exact instant it happens.
"""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction
from functools import lru_cache
from typing import Any

DAY = 86_400_000
UNIT = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY, "w": 7 * DAY}
TIME_OPS = ("within_last", "not_within_last")

Raw = dict[str, Any]


def ref_kind(x: object) -> str | None:
    if type(x) is bool:
        return "bool"
    if type(x) in (int, float):
        return "number"
    if type(x) is str:
        return "str"
    return None


def ref_same(a: object, b: object) -> bool:
    return ref_kind(a) is not None and ref_kind(a) == ref_kind(b) and a == b


@lru_cache(maxsize=4096)
def _iso_ms(text: str) -> int | None:
    try:
        d = datetime.fromisoformat(text)
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    delta = d - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * DAY + delta.seconds * 1000 + delta.microseconds // 1000


def ref_date(x: object) -> int | None:
    if type(x) is int:
        return x
    if type(x) is str:
        return _iso_ms(x)
    return None


def ref_dur(text: str) -> int:
    return int(text[:-1]) * UNIT[text[-1]]


def ref_op(op: str, a: Any, v: Any, now: int) -> bool:
    if op == "not_exists":
        return a is None
    if a is None:
        return False
    if op == "exists":
        return True
    if op == "eq":
        return ref_same(a, v)
    if op == "ne":
        return ref_kind(a) is not None and ref_kind(a) == ref_kind(v) and a != v
    number = ref_kind(a) == "number"
    if op == "lt":
        return number and a < v
    if op == "lte":
        return number and a <= v
    if op == "gt":
        return number and a > v
    if op == "gte":
        return number and a >= v
    if op == "between":
        return number and v[0] <= a and a <= v[1]
    if op == "in":
        return any(ref_same(a, x) for x in v)
    if op == "not_in":
        return ref_kind(a) == ref_kind(v[0]) and not any(ref_same(a, x) for x in v)
    if op in ("contains", "not_contains"):
        if type(a) is str:
            if type(v) is not str:
                return False
            found = v in a
        elif type(a) is list:
            found = any(ref_same(x, v) for x in a)
        else:
            return False
        return found if op == "contains" else not found
    if op == "starts_with":
        return type(a) is str and a[: len(v)] == v
    if op == "ends_with":
        return type(a) is str and a[len(a) - len(v) :] == v
    d = ref_date(a)
    if d is None:
        return False
    if op == "before":
        return d < ref_date(v)  # type: ignore[operator]
    if op == "after":
        return d > ref_date(v)  # type: ignore[operator]
    if op == "within_last":
        return d > now - ref_dur(v)
    if op == "not_within_last":
        return d <= now - ref_dur(v)
    raise AssertionError(op)


def ref_filter(c: dict[str, Any], props: dict[str, Any], now: int) -> bool:
    if "all" in c:
        return all(ref_filter(x, props, now) for x in c["all"])
    if "any" in c:
        return any(ref_filter(x, props, now) for x in c["any"])
    if "not" in c:
        return not ref_filter(c["not"], props, now)
    return ref_op(c["op"], props.get(c["prop"]), c.get("value"), now)


def ref_compare(op: str, x: Fraction | int | float, v: Any) -> bool:
    if op == "between":
        return bool(v[0] <= x <= v[1])
    return bool(
        {
            "eq": x == v,
            "ne": x != v,
            "lt": x < v,
            "lte": x <= v,
            "gt": x > v,
            "gte": x >= v,
        }[op]
    )


def ref_aggregate_value(c: dict[str, Any], raw: Raw, now: int) -> Fraction | None:
    """The exact value of the aggregate ``c``; ``None`` when it has none (no numbers)."""
    chosen = []
    for ts, props in raw["events"].get(c["event"], []):
        if "within" in c and not ts > now - ref_dur(c["within"]):
            continue
        if "filter" in c and not ref_filter(c["filter"], props, now):
            continue
        chosen.append(props)
    agg = c["agg"]
    if agg == "count":
        return Fraction(len(chosen))
    values = [p.get(c["prop"]) for p in chosen]
    if agg == "distinct_count":
        distinct: list[Any] = []
        for v in values:
            if ref_kind(v) is not None and not any(ref_same(v, d) for d in distinct):
                distinct.append(v)
        return Fraction(len(distinct))
    numbers = [Fraction(v) for v in values if ref_kind(v) == "number"]
    if agg == "sum":
        return sum(numbers, Fraction(0))
    if not numbers:
        return None
    if agg == "avg":
        return sum(numbers, Fraction(0)) / len(numbers)
    return min(numbers) if agg == "min" else max(numbers)


def ref_aggregate(c: dict[str, Any], raw: Raw, now: int) -> bool:
    value = ref_aggregate_value(c, raw, now)
    return value is not None and ref_compare(c["op"], value, c["value"])


def ref_cond(c: dict[str, Any], raw: Raw, now: int) -> bool:
    if "all" in c:
        return all(ref_cond(x, raw, now) for x in c["all"])
    if "any" in c:
        return any(ref_cond(x, raw, now) for x in c["any"])
    if "not" in c:
        return not ref_cond(c["not"], raw, now)
    if "in_segment" in c:
        return c["in_segment"] in raw["segments"]
    if "event" in c:
        return ref_aggregate(c, raw, now)
    return ref_op(c["op"], raw["attrs"].get(c["attr"]), c.get("value"), now)


def ref_segment(defn: dict[str, Any], raw: Raw, now: int) -> bool:
    member = ref_cond(defn["rules"][0]["where"], raw, now)
    for rule in defn["rules"][1:]:
        c = ref_cond(rule["where"], raw, now)
        member = {
            "union": member or c,
            "intersect": member and c,
            "except": member and not c,
        }[rule["op"]]
    return member


# ---------------------------------------------------------------- time


def walk(node: Any) -> list[dict[str, Any]]:
    """Every JSON object inside ``node``."""
    if isinstance(node, dict):
        return [node, *(x for v in node.values() for x in walk(v))]
    if isinstance(node, list):
        return [x for v in node for x in walk(v)]
    return []


def spans(defn: dict[str, Any]) -> set[int]:
    """Every window and recency duration of ``defn``, in ms."""
    out = set()
    for node in walk(defn):
        if "within" in node:
            out.add(ref_dur(node["within"]))
        if node.get("op") in TIME_OPS:
            out.add(ref_dur(node["value"]))
    return out


def dates(raw: Raw) -> set[int]:
    """Every instant the profile holds: event times and date-valued attributes and props."""
    out = {ref_date(v) for v in raw["attrs"].values()}
    for records in raw["events"].values():
        for ts, props in records:
            out.add(ts)
            out.update(ref_date(v) for v in props.values())
    out.discard(None)
    return out  # type: ignore[return-value]


def instants(defn: dict[str, Any], raw: Raw) -> set[int]:
    """Every instant at which the result of ``defn`` on ``raw`` can flip with time alone."""
    return {d + s for s in spans(defn) for d in dates(raw)}


def ref_timeline(defn: dict[str, Any], raw: Raw, now: int) -> list[tuple[int, bool]]:
    """``[(t, member)]`` for every instant ``t > now`` where membership changes, in order.

    Between two consecutive instants of :func:`instants` nothing time-dependent can flip, so
    the reference evaluated at each of them (and at ``now``) is the whole future.
    """
    member = ref_segment(defn, raw, now)
    changes = []
    for t in sorted(t for t in instants(defn, raw) if t > now):
        at = ref_segment(defn, raw, t)
        if at != member:
            changes.append((t, at))
            member = at
    return changes


def ref_next_change(defn: dict[str, Any], raw: Raw, now: int) -> int | None:
    """The first instant ``> now`` at which membership really changes; ``None`` if never."""
    timeline = ref_timeline(defn, raw, now)
    return timeline[0][0] if timeline else None
