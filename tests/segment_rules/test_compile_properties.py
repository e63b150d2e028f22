"""Property tests: the compiled evaluator against a naive reference interpreter.

The reference below works directly on the raw JSON dict, one rule of the spec at a
time, with no compilation, folding or bisecting: slow and obviously right.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from segment_rules import (
    DictProfile,
    EventRecord,
    compile_segment,
    definition_to_json,
    parse_definition,
)

NOW = 1_700_000_000_000
DAY = 86_400_000
ATTRS = ["a", "b", "c", "d"]
EVENTS = ["view", "buy"]
PROPS = ["p", "q", "r"]
SEGMENTS = ["s1", "s2", "s3"]
DURATIONS = ["90s", "30m", "2h", "1d", "3d", "1w"]
UNIT = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY, "w": 7 * DAY}

# ---------------------------------------------------------------- reference


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


def ref_date(x: object) -> int | None:
    if type(x) is int:
        return x
    if type(x) is str:
        try:
            d = datetime.fromisoformat(x)
        except ValueError:
            return None
        if d.tzinfo is None:
            d = d.replace(tzinfo=UTC)
        delta = d - datetime(1970, 1, 1, tzinfo=UTC)
        return delta.days * DAY + delta.seconds * 1000 + delta.microseconds // 1000
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
        return ref_kind(a) == ref_kind(v[0]) and any(a == x for x in v)
    if op == "not_in":
        return ref_kind(a) == ref_kind(v[0]) and all(a != x for x in v)
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
        return type(a) is str and a.startswith(v)
    if op == "ends_with":
        return type(a) is str and a.endswith(v)
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


def ref_compare(op: str, x: float, v: Any) -> bool:
    return bool(
        {
            "eq": lambda: x == v,
            "ne": lambda: x != v,
            "lt": lambda: x < v,
            "lte": lambda: x <= v,
            "gt": lambda: x > v,
            "gte": lambda: x >= v,
            "between": lambda: v[0] <= x <= v[1],
        }[op]()
    )


def ref_aggregate(c: dict[str, Any], raw: dict[str, Any], now: int) -> bool:
    chosen = []
    for ts, props in raw["events"].get(c["event"], []):
        if "within" in c and not ts > now - ref_dur(c["within"]):
            continue
        if "filter" in c and not ref_filter(c["filter"], props, now):
            continue
        chosen.append(props)
    agg = c["agg"]
    if agg == "count":
        return ref_compare(c["op"], len(chosen), c["value"])
    values = [p.get(c["prop"]) for p in chosen]
    if agg == "distinct_count":
        distinct: list[Any] = []
        for v in values:
            if ref_kind(v) is not None and not any(ref_same(v, d) for d in distinct):
                distinct.append(v)
        return ref_compare(c["op"], len(distinct), c["value"])
    numbers = [v for v in values if ref_kind(v) == "number"]
    if agg == "sum":
        return ref_compare(c["op"], sum(numbers), c["value"])
    if not numbers:
        return False
    result = {"avg": lambda: sum(numbers) / len(numbers), "min": lambda: min(numbers)}.get(
        agg, lambda: max(numbers)
    )()
    return ref_compare(c["op"], result, c["value"])


def ref_cond(c: dict[str, Any], raw: dict[str, Any], now: int) -> bool:
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


def ref_segment(defn: dict[str, Any], raw: dict[str, Any], now: int) -> bool:
    member = ref_cond(defn["rules"][0]["where"], raw, now)
    for rule in defn["rules"][1:]:
        c = ref_cond(rule["where"], raw, now)
        member = {
            "union": member or c,
            "intersect": member and c,
            "except": member and not c,
        }[rule["op"]]
    return member


# ---------------------------------------------------------------- strategies

epoch_ms = st.integers(NOW - 10 * DAY, NOW + DAY)


@st.composite
def iso_dates(draw: st.DrawFn) -> str:
    ms = draw(epoch_ms)
    d = datetime.fromtimestamp(ms / 1000, UTC)
    style = draw(st.sampled_from(["naive", "z", "offset", "date"]))
    if style == "date":
        return d.date().isoformat()
    if style == "naive":
        return d.replace(tzinfo=None).isoformat(timespec="milliseconds")
    text = d.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z") if style == "z" else text


strings = st.sampled_from(["", "x", "de", "DE", "abc", "xyz", "1", "true"])
numbers = st.one_of(st.integers(-5, 5), st.sampled_from([0.5, -1.5, 2.0, 1e3]))
scalars = st.one_of(strings, numbers, st.booleans())
dates: st.SearchStrategy[str | int] = st.one_of(iso_dates(), epoch_ms)
# what a profile attribute or event property can hold
any_value = st.one_of(
    st.none(),
    scalars,
    dates,
    st.lists(scalars, max_size=3),
    st.dictionaries(st.sampled_from(["k"]), scalars, max_size=1),
    st.just("not a date"),
)


@st.composite
def leaf_value(draw: st.DrawFn, op: str) -> Any:
    if op in ("eq", "ne", "contains", "not_contains"):
        return draw(scalars)
    if op in ("lt", "lte", "gt", "gte"):
        return draw(numbers)
    if op == "between":
        lo, hi = sorted(draw(st.lists(numbers, min_size=2, max_size=2)))
        return [lo, hi]
    if op in ("in", "not_in"):
        kind = draw(st.sampled_from([strings, numbers, st.booleans()]))
        return draw(st.lists(kind, min_size=1, max_size=3))
    if op in ("starts_with", "ends_with"):
        return draw(strings)
    if op in ("before", "after"):
        return draw(dates)
    return draw(st.sampled_from(DURATIONS))


OPS = [
    "eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "contains",
    "not_contains", "starts_with", "ends_with", "exists", "not_exists", "before", "after",
    "within_last", "not_within_last",
]  # fmt: skip


@st.composite
def leaf(draw: st.DrawFn, key: str, names: list[str]) -> dict[str, Any]:
    op = draw(st.sampled_from(OPS))
    out: dict[str, Any] = {key: draw(st.sampled_from(names)), "op": op}
    if op not in ("exists", "not_exists"):
        out["value"] = draw(leaf_value(op))
    return out


def nested(base: st.SearchStrategy[dict[str, Any]], leaves: int) -> Any:
    return st.recursive(
        base,
        lambda inner: st.one_of(
            st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda x: {"not": x}, inner),
        ),
        max_leaves=leaves,
    )


filters = nested(leaf("prop", PROPS), 3)


@st.composite
def aggregate(draw: st.DrawFn, windowed: bool | None = None) -> dict[str, Any]:
    agg = draw(st.sampled_from(["count", "sum", "avg", "min", "max", "distinct_count"]))
    out: dict[str, Any] = {"event": draw(st.sampled_from(EVENTS)), "agg": agg}
    if agg != "count":
        out["prop"] = draw(st.sampled_from(PROPS))
    if draw(st.booleans()):
        out["filter"] = draw(filters)
    if windowed if windowed is not None else draw(st.booleans()):
        out["within"] = draw(st.sampled_from(DURATIONS))
    op = draw(st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte", "between"]))
    out["op"] = op
    out["value"] = draw(leaf_value(op)) if op == "between" else draw(st.integers(0, 4))
    return out


conditions = nested(
    st.one_of(
        leaf("attr", ATTRS),
        aggregate(),
        st.builds(lambda s: {"in_segment": s}, st.sampled_from(SEGMENTS)),
    ),
    8,
)


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, Any]:
    rules: list[dict[str, Any]] = [{"where": draw(conditions)}]
    for _ in range(draw(st.integers(0, 2))):
        op = draw(st.sampled_from(["union", "intersect", "except"]))
        rules.append({"op": op, "where": draw(conditions)})
    defn: dict[str, Any] = {"id": "seg", "name": "Generated", "rules": rules}
    if draw(st.booleans()):
        defn["type"] = draw(st.sampled_from(["dynamic", "static"]))
    if draw(st.booleans()):
        defn["tags"] = draw(st.lists(strings, max_size=2))
    return defn


@st.composite
def raw_profiles(draw: st.DrawFn) -> dict[str, Any]:
    attrs = {name: draw(any_value) for name in ATTRS if draw(st.booleans())}
    prop_values = st.one_of(numbers, numbers, any_value)
    events: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for etype in EVENTS:
        records = draw(
            st.lists(
                st.tuples(
                    epoch_ms,
                    st.dictionaries(st.sampled_from(PROPS), prop_values, max_size=3),
                ),
                max_size=6,
            )
        )
        events[etype] = sorted(records, key=lambda r: r[0])
    segments = draw(st.frozensets(st.sampled_from(SEGMENTS)))
    return {"attrs": attrs, "events": events, "segments": segments}


def to_profile(raw: dict[str, Any]) -> DictProfile:
    return DictProfile(
        raw["attrs"],
        {t: [EventRecord(ts, props) for ts, props in recs] for t, recs in raw["events"].items()},
        raw["segments"],
    )


nows = st.integers(NOW - 2 * DAY, NOW + 12 * DAY)
# close to the generated events and dates, where windows hold something
busy_nows = st.integers(NOW - 3 * DAY, NOW + DAY)
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---------------------------------------------------------------- properties


@SETTINGS
@given(definitions(), raw_profiles(), nows)
def test_compiled_matches_reference(defn: dict[str, Any], raw: dict[str, Any], now: int) -> None:
    compiled = compile_segment(parse_definition(defn))
    assert compiled.evaluate(to_profile(raw), now) == ref_segment(defn, raw, now)


@SETTINGS
@given(definitions(), raw_profiles(), busy_nows, st.data())
def test_next_change_is_never_late(
    defn: dict[str, Any], raw: dict[str, Any], now: int, data: st.DataObject
) -> None:
    compiled = compile_segment(parse_definition(defn))
    profile = to_profile(raw)
    at_now = compiled.evaluate(profile, now)
    edge = compiled.next_change(profile, now)
    if edge is None:
        later = data.draw(st.integers(now, now + 30 * DAY), label="later")
        assert compiled.evaluate(profile, later) == at_now
        return
    assert edge > now
    assert compiled.time_dependent
    assert compiled.evaluate(profile, edge - 1) == at_now
    for t in data.draw(st.lists(st.integers(now, edge - 1), max_size=5), label="instants"):
        assert compiled.evaluate(profile, t) == at_now


@SETTINGS
@given(definitions(), raw_profiles(), nows)
def test_next_change_none_without_time_conditions(
    defn: dict[str, Any], raw: dict[str, Any], now: int
) -> None:
    compiled = compile_segment(parse_definition(defn))
    text = json.dumps(defn)
    uses_time = '"within' in text or "within_last" in text
    assert compiled.time_dependent == uses_time
    if not uses_time:
        assert compiled.next_change(to_profile(raw), now) is None


@SETTINGS
@given(definitions())
def test_round_trip(defn: dict[str, Any]) -> None:
    parsed = parse_definition(defn)
    encoded = definition_to_json(parsed)
    assert parse_definition(encoded) == parsed
    assert parse_definition(json.loads(json.dumps(encoded))) == parsed


SCHEMA = json.loads(
    (Path(__file__).parents[2] / "segment_rules" / "segment.schema.json").read_text()
)


@settings(max_examples=150, deadline=None)
@given(definitions())
def test_schema_accepts_every_valid_definition(defn: dict[str, Any]) -> None:
    jsonschema.validate(defn, SCHEMA, cls=jsonschema.Draft202012Validator)


@settings(max_examples=200, deadline=None)
@given(definitions(), raw_profiles(), nows)
def test_reference_agrees_after_round_trip(
    defn: dict[str, Any], raw: dict[str, Any], now: int
) -> None:
    encoded = definition_to_json(parse_definition(defn))
    assume(encoded["rules"])
    assert compile_segment(encoded).evaluate(to_profile(raw), now) == ref_segment(encoded, raw, now)


def walk(node: Any) -> list[dict[str, Any]]:
    """Every JSON object inside ``node``."""
    if isinstance(node, dict):
        return [node, *(x for v in node.values() for x in walk(v))]
    if isinstance(node, list):
        return [x for v in node for x in walk(v)]
    return []


def boundaries(raw: dict[str, Any], defn: dict[str, Any]) -> list[int]:
    """Instants where a window edge of ``defn`` falls exactly on the profile's data."""
    edges = []
    for node in walk(defn):
        if "within" in node:
            span = ref_dur(node["within"])
            edges += [ts + span for ts, _ in raw["events"].get(node["event"], [])]
        if node.get("op") in ("within_last", "not_within_last"):
            span = ref_dur(node["value"])
            values = [*raw["attrs"].values()]
            values += [v for recs in raw["events"].values() for _, p in recs for v in p.values()]
            edges += [d + span for v in values if (d := ref_date(v)) is not None]
    return edges


@SETTINGS
@given(definitions(), raw_profiles(), st.data())
def test_compiled_matches_reference_on_window_edges(
    defn: dict[str, Any], raw: dict[str, Any], data: st.DataObject
) -> None:
    edges = boundaries(raw, defn)
    assume(edges)
    now = data.draw(st.sampled_from(edges), label="edge") + data.draw(st.sampled_from([-1, 0, 1]))
    compiled = compile_segment(parse_definition(defn))
    profile = to_profile(raw)
    assert compiled.evaluate(profile, now) == ref_segment(defn, raw, now)
    edge = compiled.next_change(profile, now)
    if edge is not None:
        assert compiled.evaluate(profile, edge - 1) == compiled.evaluate(profile, now)


@st.composite
def windowed_definitions(draw: st.DrawFn) -> dict[str, Any]:
    """One aggregate with a window, or one recency test, optionally negated."""
    where = draw(st.one_of(aggregate(windowed=True), leaf("attr", ATTRS)))
    if draw(st.booleans()):
        where = {"not": where}
    return {"id": "seg", "name": "Windowed", "rules": [{"where": where}]}


@settings(max_examples=1000, deadline=None)
@given(windowed_definitions(), raw_profiles(), st.data())
def test_single_window_matches_reference_on_its_edges(
    defn: dict[str, Any], raw: dict[str, Any], data: st.DataObject
) -> None:
    edges = boundaries(raw, defn)
    assume(edges)
    now = data.draw(st.sampled_from(edges), label="edge") + data.draw(st.sampled_from([-1, 0, 1]))
    compiled = compile_segment(parse_definition(defn))
    profile = to_profile(raw)
    assert compiled.evaluate(profile, now) == ref_segment(defn, raw, now)
    edge = compiled.next_change(profile, now)
    if edge is not None:
        assert compiled.evaluate(profile, edge - 1) == compiled.evaluate(profile, now)
