"""Differentiators: the attributes and activity features whose distribution differs most
between a segment and a baseline (all customers, or another segment).

Effect sizes: Cohen's h for a category's share (booleans and categorical attributes with at
most `MAX_CATEGORIES` values; an attribute's effect is its most different value's) and
Cohen's d for numbers (attributes over the customers that have them; activity features over
everyone). Ranked by |effect|.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .data import CustomerData, describe_attributes, label
from .errors import InsightError
from .features import NumericFeature, activity_features
from .stats import cohens_d, cohens_h, magnitude

__all__ = ["MAX_CATEGORIES", "differentiators"]

MAX_CATEGORIES = 100
VALUES_SHOWN = 3


def differentiators(
    segment: Sequence[CustomerData],
    baseline: Sequence[CustomerData],
    now_ms: int,
    limit: int = 10,
) -> dict[str, Any]:
    """The `limit` most different features, most different first, with what was left out."""
    if not segment:
        raise InsightError("empty_segment", "the segment has no members to describe", "segment_id")
    if not baseline:
        raise InsightError("empty_segment", "the baseline has no customers", "vs")
    infos = describe_attributes([*segment, *baseline])
    found: list[dict[str, Any]] = []
    left_out: list[dict[str, str]] = []
    for info in infos.values():
        if info.kind in ("boolean", "categorical"):
            if info.distinct > MAX_CATEGORIES:
                left_out.append(
                    {
                        "attribute": info.name,
                        "reason": f"{info.distinct} distinct values (more than {MAX_CATEGORIES})",
                    }
                )
                continue
            found.append(_categorical(info.name, list(info.values), segment, baseline))
        elif info.kind == "numeric":
            feature = NumericFeature(info.name, attr=info.name)
            found.append(_numeric(feature, segment, baseline, now_ms))
        else:
            left_out.append(
                {"attribute": info.name, "reason": f"{info.kind} values (not one kind of scalar)"}
            )
    for feature in activity_features([*segment, *baseline]):
        found.append(_numeric(feature, segment, baseline, now_ms))
    found = [f for f in found if f["effect_size"] != 0]
    found.sort(key=lambda f: (-abs(f["effect_size"]), f["feature"]))
    return {
        "segment_size": len(segment),
        "baseline_size": len(baseline),
        "effect_sizes": "Cohen's h for shares, Cohen's d for numbers; |0.2| small, "
        "|0.5| medium, |0.8| large",
        "differentiators": found[:limit],
        "left_out": left_out,
    }


def _categorical(
    name: str,
    values: list[Any],
    segment: Sequence[CustomerData],
    baseline: Sequence[CustomerData],
) -> dict[str, Any]:
    rows = []
    for value in values:
        p1 = _share(segment, name, value)
        p2 = _share(baseline, name, value)
        h = cohens_h(p1, p2)
        rows.append(
            {
                "value": value,
                "segment_percent": round(100 * p1, 1),
                "baseline_percent": round(100 * p2, 1),
                "effect_size": round(h, 3),
                "text": f"{name} = {label(value)}: {100 * p1:.0f} % vs {100 * p2:.0f} %",
            }
        )
    rows.sort(key=lambda r: -abs(r["effect_size"]))
    top = rows[:VALUES_SHOWN]
    effect = top[0]["effect_size"] if top else 0.0
    return {
        "feature": name,
        "kind": "category",
        "effect_size": effect,
        "magnitude": magnitude(effect),
        "values": top,
        "text": top[0]["text"] if top else name,
    }


def _share(customers: Sequence[CustomerData], name: str, value: Any) -> float:
    hits = sum(1 for c in customers if type(v := c.attrs.get(name)) is type(value) and v == value)
    return hits / len(customers)


def _numeric(
    feature: NumericFeature,
    segment: Sequence[CustomerData],
    baseline: Sequence[CustomerData],
    now_ms: int,
) -> dict[str, Any]:
    a = [v for c in segment if (v := feature.value(c, now_ms)) is not None]
    b = [v for c in baseline if (v := feature.value(c, now_ms)) is not None]
    d = round(cohens_d(a, b), 3)
    mean_a = sum(a) / len(a) if a else None
    mean_b = sum(b) / len(b) if b else None
    return {
        "feature": feature.name,
        "kind": "attribute" if feature.attr is not None else "activity",
        "effect_size": d,
        "magnitude": magnitude(d),
        "segment_mean": _round(mean_a),
        "baseline_mean": _round(mean_b),
        "segment_present_percent": round(100 * len(a) / len(segment), 1),
        "baseline_present_percent": round(100 * len(b) / len(baseline), 1),
        "text": f"{feature.name}: average {_fmt(mean_a)} vs {_fmt(mean_b)}",
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
