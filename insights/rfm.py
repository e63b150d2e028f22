"""Suggested segments by activity: recency, frequency and monetary value (RFM).

Over the customers with at least one event of the activity in the look-back period:
R = time since the last one, F = how many in the period, M = the sum of the value property
in the period (without a value property, M is not used). Each is scored 1..5 at its
quintiles (numpy's linear interpolation): a score is 1 + the number of quintile edges the
customer reaches. Recency edges are rounded up to whole hours and frequency edges up to whole
counts (a count reaches 2.4 exactly when it reaches 3) and at least 2, so F = 1 always means
a single event in the period; monetary edges keep 6 significant digits. The groups are
rectangles over the scores and partition the active customers:

| group | scores |
|---|---|
| Champions | R ≥ 4, F ≥ 4, M ≥ 4 |
| Loyal | R ≥ 3, F ≥ 4, not a Champion |
| Potential loyalists | R ≥ 4, F 2-3 |
| New | R ≥ 4, F = 1 |
| Need attention | R = 3, F ≤ 3 |
| At risk | R ≤ 2, F ≥ 3 |
| Hibernating | R ≤ 2, F ≤ 2 |

Every score test is a windowed aggregate of the grammar: R ≥ k is "at least one event within
w_k", F ≥ k "at least f_k events within the look-back", M ≥ k "sum of the value within the
look-back at least m_k", so an accepted group moves customers in and out as time passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .data import CustomerData, is_number
from .definitions import slug, suggestion_id
from .errors import InsightError
from .features import _number, duration

__all__ = ["GROUPS", "Scores", "rfm_scores", "suggest_by_activity"]

HOUR_MS = 3_600_000
QUINTILES = (0.2, 0.4, 0.6, 0.8)


@dataclass(frozen=True)
class Scores:
    """Scores 1..5 and the raw values of one active customer."""

    r: int
    f: int
    m: int
    age_ms: int
    count: int
    value: float


Rule = Callable[[Scores], bool]
GROUPS: tuple[tuple[str, str, Rule], ...] = (
    ("Champions", "bought recently, often and spent the most",
     lambda s: s.r >= 4 and s.f >= 4 and s.m >= 4),
    ("Loyal", "buy often, recently enough",
     lambda s: s.r >= 3 and s.f >= 4 and not (s.r >= 4 and s.m >= 4)),
    ("Potential loyalists", "recent, a few purchases", lambda s: s.r >= 4 and 2 <= s.f <= 3),
    ("New", "recent, one purchase", lambda s: s.r >= 4 and s.f == 1),
    ("Need attention", "neither recent nor frequent", lambda s: s.r == 3 and s.f <= 3),
    ("At risk", "used to buy often, not lately", lambda s: s.r <= 2 and s.f >= 3),
    ("Hibernating", "long ago and seldom", lambda s: s.r <= 2 and s.f <= 2),
)  # fmt: skip


@dataclass(frozen=True)
class Edges:
    """Score k (2..5) is reached at edge k-2: recency windows (ms), counts, values."""

    recency_ms: tuple[int, ...]
    frequency: tuple[int, ...]
    monetary: tuple[float, ...] | None


def _raw(
    customer: CustomerData, event: str, prop: str | None, lookback_ms: int, now_ms: int
) -> tuple[int, int, float] | None:
    recent = [r for r in customer.events.get(event, ()) if r.ts > now_ms - lookback_ms]
    if not recent:
        return None
    value = sum(float(v) for r in recent if is_number(v := r.props.get(prop or "")))
    return now_ms - max(r.ts for r in recent), len(recent), value


def _edges(raw: Sequence[tuple[int, int, float]], with_value: bool) -> Edges:
    ages = np.asarray([a for a, _c, _v in raw], dtype=np.float64)
    counts = np.asarray([c for _a, c, _v in raw], dtype=np.float64)
    values = np.asarray([v for _a, _c, v in raw], dtype=np.float64)
    # R = 5 for the most recent fifth: the edge for score k is the (1 - (k-1)/5) quantile... of age
    recency = tuple(
        max(HOUR_MS, math.ceil(float(np.quantile(ages, 1 - q)) / HOUR_MS) * HOUR_MS)
        for q in QUINTILES
    )
    frequency = tuple(max(2, math.ceil(float(np.quantile(counts, q)))) for q in QUINTILES)
    monetary = (
        tuple(float(_number(float(np.quantile(values, q)))) for q in QUINTILES)
        if with_value
        else None
    )
    return Edges(recency, frequency, monetary)


def _score(age_ms: int, count: int, value: float, edges: Edges) -> Scores:
    r = 1 + sum(1 for w in edges.recency_ms if age_ms < w)
    f = 1 + sum(1 for e in edges.frequency if count >= e)
    m = f if edges.monetary is None else 1 + sum(1 for e in edges.monetary if value >= e)
    return Scores(r, f, m, age_ms, count, value)


def rfm_scores(
    customers: Sequence[CustomerData],
    event: str,
    prop: str | None,
    lookback_ms: int,
    now_ms: int,
) -> tuple[Edges, dict[str, Scores]]:
    """The quintile edges and each active customer's scores."""
    raw = {
        c.customer_id: found
        for c in customers
        if (found := _raw(c, event, prop, lookback_ms, now_ms)) is not None
    }
    if not raw:
        raise InsightError(
            "empty_population",
            f"no customer has a {event!r} event in the look-back period",
            "event",
        )
    edges = _edges(list(raw.values()), prop is not None)
    return edges, {cid: _score(a, c, v, edges) for cid, (a, c, v) in raw.items()}


def suggest_by_activity(
    customers: Sequence[CustomerData],
    event: str,
    prop: str | None,
    lookback_ms: int,
    now_ms: int,
) -> dict[str, Any]:
    """The named RFM groups as definitions, each with its size and thresholds."""
    if prop is not None and not any(
        is_number(r.props.get(prop)) for c in customers for r in c.events.get(event, ())
    ):
        raise InsightError(
            "unknown_property",
            f"no {event!r} event has a numeric property {prop!r}",
            "value",
        )
    edges, scores = rfm_scores(customers, event, prop, lookback_ms, now_ms)
    atoms = _Atoms(event, prop, lookback_ms, edges)
    suggestions = []
    for name, meaning, rule in GROUPS:
        where = atoms.group(name)
        sid = suggestion_id("rfm", {"group": name, "where": where})
        definition = {
            "id": slug(f"rfm-{event}-{name}-{sid.split('-')[-1]}", 64),
            "name": f"{name} ({event})",
            "description": f"RFM group: {meaning}",
            "tags": ["suggested", "rfm"],
            "rules": [{"where": where}],
        }
        members = sorted(cid for cid, s in scores.items() if rule(s))
        suggestions.append(
            {
                "suggestion_id": sid,
                "group": name,
                "meaning": meaning,
                "definition": definition,
                "size": len(members),
                "percent": round(100 * len(members) / len(scores), 1),
                "thresholds": atoms.text(name),
                "preview": members[:20],
            }
        )
    return {
        "event": event,
        "value": prop,
        "lookback": duration(lookback_ms),
        "active_customers": len(scores),
        "customers": len(customers),
        "edges": {
            "recency": [duration(w) for w in edges.recency_ms],
            "frequency": list(edges.frequency),
            "monetary": None if edges.monetary is None else list(edges.monetary),
        },
        "scoring": "quintiles (scores 1..5); recency edges rounded up to whole hours, "
        "frequency edges up to whole counts, at least 2",
        "suggestions": suggestions,
    }


class _Atoms:
    """The grammar conditions of R >= k, F >= k, M >= k."""

    def __init__(self, event: str, prop: str | None, lookback_ms: int, edges: Edges) -> None:
        self.event, self.prop, self.edges = event, prop, edges
        self.lookback = duration(lookback_ms)

    def base(self) -> dict[str, Any]:
        return {"event": self.event, "agg": "count", "within": self.lookback, "op": "gte",
                "value": 1}  # fmt: skip

    def r(self, k: int) -> dict[str, Any]:
        window = duration(self.edges.recency_ms[k - 2])
        return {"event": self.event, "agg": "count", "within": window, "op": "gte", "value": 1}

    def f(self, k: int) -> dict[str, Any]:
        return {"event": self.event, "agg": "count", "within": self.lookback, "op": "gte",
                "value": self.edges.frequency[k - 2]}  # fmt: skip

    def m(self, k: int) -> dict[str, Any] | None:
        if self.edges.monetary is None:
            return None
        return {"event": self.event, "agg": "sum", "prop": self.prop, "within": self.lookback,
                "op": "gte", "value": _number(self.edges.monetary[k - 2])}  # fmt: skip

    def group(self, name: str) -> dict[str, Any]:
        r, f, m = self.r, self.f, self.m
        champion = [r(4), f(4), *([m(4)] if self.edges.monetary else [])]
        parts: list[dict[str, Any]] = {
            "Champions": champion,
            "Loyal": [r(3), f(4), {"not": {"all": [r(4), m(4)]}}]
            if self.edges.monetary
            else [r(3), f(4), {"not": r(4)}],
            "Potential loyalists": [r(4), f(2), {"not": f(4)}],
            "New": [r(4), {"not": f(2)}],
            "Need attention": [r(3), {"not": r(4)}, {"not": f(4)}],
            "At risk": [{"not": r(3)}, f(3)],
            "Hibernating": [{"not": r(3)}, {"not": f(3)}],
        }[name]  # type: ignore[assignment]
        return {"all": [self.base(), *parts]}

    def text(self, name: str) -> str:
        e = self.edges
        w = [duration(x) for x in e.recency_ms]
        fq = e.frequency
        few = f"{fq[0]}" if fq[0] >= fq[2] - 1 else f"{fq[0]}-{fq[2] - 1}"
        money = f", {self.prop} sum ≥ {_number(e.monetary[2])}" if e.monetary is not None else ""
        return {
            "Champions": f"last within {w[2]}, ≥ {fq[2]} in {self.lookback}{money}",
            "Loyal": f"last within {w[1]}, ≥ {fq[2]} in {self.lookback}, not a Champion",
            "Potential loyalists": f"last within {w[2]}, {few} in {self.lookback}",
            "New": f"last within {w[2]}, < {fq[0]} in {self.lookback}",
            "Need attention": f"last within {w[1]} but not {w[2]}, < {fq[2]} in {self.lookback}",
            "At risk": f"nothing within {w[1]}, ≥ {fq[1]} in {self.lookback}",
            "Hibernating": f"nothing within {w[1]}, < {fq[1]} in {self.lookback}",
        }[name]
