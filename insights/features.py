"""Features of a customer: numeric attributes, one-hot categories and activity aggregates.

Every feature can state a condition in the rule grammar (`docs/segments.md`) that selects the
customers whose value is at least / below a threshold, so a model's split becomes a rule.
Activity windows are 7, 30 and 90 days; sums and averages cover the 90-day window.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .data import DAY_MS, AttributeInfo, CustomerData, is_number, label

__all__ = [
    "ACTIVITY_WINDOWS_D",
    "Agg",
    "Feature",
    "NumericFeature",
    "OneHot",
    "activity_features",
    "duration",
    "matrix",
]

ACTIVITY_WINDOWS_D = (7, 30, 90)
VALUE_WINDOW_D = 90
MAX_EVENT_TYPES = 20
MAX_PROPS_PER_TYPE = 5

Agg = Literal["count", "sum", "avg", "days_since"]
_UNITS = (("w", 604_800_000), ("d", DAY_MS), ("h", 3_600_000), ("m", 60_000), ("s", 1000))


def duration(ms: float) -> str:
    """A grammar duration for `ms` rounded to whole seconds (at least 1 s), largest unit."""
    seconds_ms = max(1, round(ms / 1000)) * 1000
    for unit, size in _UNITS:
        if seconds_ms % size == 0:
            return f"{seconds_ms // size}{unit}"
    raise AssertionError("unreachable: every whole second divides by 's'")


def _number(value: float) -> int | float:
    """A threshold as JSON prints it: an int when whole, else rounded to 6 significant digits."""
    if float(value).is_integer():
        return int(value)
    return float(f"{value:.6g}")


@dataclass(frozen=True)
class NumericFeature:
    """A number per customer (None when it has none): an attribute or an activity aggregate."""

    name: str
    attr: str | None = None
    event: str | None = None
    agg: Agg | None = None
    prop: str | None = None
    window_d: int | None = None

    @property
    def source(self) -> str:
        return self.attr if self.attr is not None else f"event:{self.event}"

    def value(self, customer: CustomerData, now_ms: int) -> float | None:
        if self.attr is not None:
            raw = customer.attrs.get(self.attr)
            return float(raw) if is_number(raw) else None
        records = customer.events.get(self.event or "", ())
        if self.agg == "days_since":
            # whole days, the unit the feature names: differences of seconds between customers
            # active today are noise (they made a spurious "large" differentiator)
            return float((now_ms - records[-1].ts) // DAY_MS) if records else None
        start = now_ms - (self.window_d or 0) * DAY_MS
        recent = [r for r in records if r.ts > start]
        if self.agg == "count":
            return float(len(recent))
        values = [float(v) for r in recent if is_number(v := r.props.get(self.prop or ""))]
        if self.agg == "sum":
            return float(sum(values))
        return sum(values) / len(values) if values else None

    def at_least(self, threshold: float) -> dict[str, Any]:
        """A condition true exactly when the value is present and >= `threshold`."""
        t = _number(threshold)
        if self.attr is not None:
            return {"attr": self.attr, "op": "gte", "value": t}
        if self.agg == "days_since":
            return {
                "all": [
                    {"event": self.event, "agg": "count", "op": "gte", "value": 1},
                    {"not": self._within(threshold)},
                ]
            }
        return {**self._aggregate(), "op": "gte", "value": t}

    def below(self, threshold: float) -> dict[str, Any]:
        """A condition true exactly when the value is present and < `threshold`."""
        t = _number(threshold)
        if self.attr is not None:
            return {"attr": self.attr, "op": "lt", "value": t}
        if self.agg == "days_since":
            return self._within(threshold)
        return {**self._aggregate(), "op": "lt", "value": t}

    def _within(self, days: float) -> dict[str, Any]:
        return {
            "event": self.event,
            "agg": "count",
            "within": duration(days * DAY_MS),
            "op": "gte",
            "value": 1,
        }

    def _aggregate(self) -> dict[str, Any]:
        cond: dict[str, Any] = {"event": self.event, "agg": self.agg}
        if self.prop is not None:
            cond["prop"] = self.prop
        cond["within"] = f"{self.window_d}d"
        return cond


@dataclass(frozen=True)
class OneHot:
    """1 when the attribute equals `value` (same kind, as the grammar's `eq`), else 0."""

    attr: str
    value: Any

    @property
    def name(self) -> str:
        return f"{self.attr} = {label(self.value)}"

    @property
    def source(self) -> str:
        return self.attr

    def value_of(self, customer: CustomerData) -> float:
        raw = customer.attrs.get(self.attr)
        same = type(raw) is type(self.value) and raw == self.value
        return 1.0 if same else 0.0

    def condition(self) -> dict[str, Any]:
        return {"attr": self.attr, "op": "eq", "value": self.value}


Feature = NumericFeature | OneHot


def one_hots(info: AttributeInfo) -> list[OneHot]:
    """One column per value seen, most frequent first."""
    return [OneHot(info.name, v) for v, _n in info.values.most_common()]


def activity_features(customers: Sequence[CustomerData]) -> list[NumericFeature]:
    """Counts per event type in 7/30/90 days, days since the last one, and the 90-day sum and
    average of each numeric property (the most frequent event types and properties first)."""
    types: Counter[str] = Counter()
    props: dict[str, Counter[str]] = {}
    for customer in customers:
        for event_type, records in customer.events.items():
            types[event_type] += len(records)
            seen = props.setdefault(event_type, Counter())
            for record in records[-20:]:  # a sample of recent ones is enough to find the props
                for key, value in record.props.items():
                    if is_number(value):
                        seen[key] += 1
    features: list[NumericFeature] = []
    for event_type, _n in types.most_common(MAX_EVENT_TYPES):
        for days in ACTIVITY_WINDOWS_D:
            features.append(
                NumericFeature(
                    f"{event_type} count {days}d", event=event_type, agg="count", window_d=days
                )
            )
        features.append(
            NumericFeature(f"days since last {event_type}", event=event_type, agg="days_since")
        )
        for prop, _m in props[event_type].most_common(MAX_PROPS_PER_TYPE):
            aggs: tuple[Agg, ...] = ("sum", "avg")
            for agg in aggs:
                features.append(
                    NumericFeature(
                        f"{event_type} {agg} {prop} {VALUE_WINDOW_D}d",
                        event=event_type,
                        agg=agg,
                        prop=prop,
                        window_d=VALUE_WINDOW_D,
                    )
                )
    return features


def matrix(
    features: Sequence[Feature], customers: Iterable[CustomerData], now_ms: int
) -> npt.NDArray[np.float64]:
    """Customers x features; NaN where a numeric feature has no value."""
    rows = []
    for customer in customers:
        row = []
        for feature in features:
            if isinstance(feature, OneHot):
                row.append(feature.value_of(customer))
            else:
                value = feature.value(customer, now_ms)
                row.append(math.nan if value is None else value)
        rows.append(row)
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(features))


def values_by_attribute(features: Sequence[Feature]) -> Mapping[str, list[Feature]]:
    grouped: dict[str, list[Feature]] = {}
    for feature in features:
        grouped.setdefault(feature.source, []).append(feature)
    return grouped
