"""Suggested segments for a measure: a decision tree over influencing attributes.

The primary attribute is numeric (the tree fits its mean) or has at most
`MAX_PRIMARY_CATEGORIES` values (the tree fits the share of the `target` value). Influencing
attributes: categorical ones with at most `MAX_CATEGORIES` values, one-hot; numeric ones
with at most `EXACT_VALUES` distinct values split at any of them, others binned at their
5 % quantiles (thresholds are always values customers have); activity features named
``event:TYPE:count:30d``, ``event:TYPE:sum:PROP:90d``, ``event:TYPE:avg:PROP:90d`` or
``event:TYPE:days_since``.

Each leaf's path becomes a segment definition; its size and value are then computed by the
engine's own evaluator over the population (exact for the definition, not the tree's
estimate). Significance: Welch's t-test (numeric) or a two-proportion z-test (categorical),
group against the rest, at alpha = 0.05 with a Bonferroni correction over the leaves.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.tree import DecisionTreeRegressor

from .data import (
    AttributeInfo,
    CustomerData,
    describe_attributes,
    evaluate_definition,
    is_number,
    label,
    require_attribute,
)
from .definitions import Step, conjunction, slug, suggestion_id
from .errors import InsightError
from .features import Agg, NumericFeature, OneHot
from .stats import two_proportion_z_test, welch_t_test

__all__ = [
    "ALPHA",
    "MAX_CATEGORIES",
    "MAX_PRIMARY_CATEGORIES",
    "MAX_TRAINING_ROWS",
    "suggest_for_measure",
]

ALPHA = 0.05
MAX_CATEGORIES = 100
MAX_PRIMARY_CATEGORIES = 10
MAX_TRAINING_ROWS = 50_000
BINS = 20
EXACT_VALUES = 64
_ACTIVITY = re.compile(
    r"^event:(?P<type>[^:]+):(?:(?P<agg>count):(?P<w1>\d+)d|(?P<vagg>sum|avg):(?P<prop>[^:]+):"
    r"(?P<w2>\d+)d|(?P<ds>days_since))$"
)


class _Binned:
    """A numeric feature cut at its values or quantiles; bin -1 holds customers without one."""

    def __init__(self, feature: NumericFeature, values: list[float | None]) -> None:
        self.feature = feature
        present = np.asarray([v for v in values if v is not None], dtype=np.float64)
        if present.size == 0:
            self.low = 0.0
            self.inner = np.asarray([], dtype=np.float64)
        else:
            distinct = np.unique(present)
            if distinct.size <= EXACT_VALUES:
                edges = distinct  # few values: every one is a possible threshold
            else:
                qs = np.linspace(0, 1, BINS + 1)
                edges = np.unique(np.quantile(present, qs, method="lower"))
            self.low = float(edges[0])
            self.inner = edges[1:] if distinct.size <= EXACT_VALUES else edges[1:-1]
        self.column = np.asarray(
            [-1.0 if v is None else float(np.searchsorted(self.inner, v, side="right"))
             for v in values]
        )  # fmt: skip

    def threshold(self, split: float) -> float:
        """The value at which `bin > split` starts."""
        k = int(np.floor(split))
        return self.low if k < 0 else float(self.inner[k])


def _activity_feature(spec: str, path: str) -> NumericFeature:
    match = _ACTIVITY.match(spec)
    if match is None:
        raise InsightError(
            "invalid_value",
            f"{spec!r} (at {path}) is not an activity feature; use event:TYPE:count:30d, "
            "event:TYPE:sum:PROP:90d, event:TYPE:avg:PROP:90d or event:TYPE:days_since",
            path,
        )
    event = match["type"]
    if match["ds"]:
        return NumericFeature(f"days since last {event}", event=event, agg="days_since")
    if match["agg"]:
        days = int(match["w1"])
        return NumericFeature(f"{event} count {days}d", event=event, agg="count", window_d=days)
    days = int(match["w2"])
    agg: Agg = "sum" if match["vagg"] == "sum" else "avg"
    return NumericFeature(
        f"{event} {agg} {match['prop']} {days}d",
        event=event,
        agg=agg,
        prop=match["prop"],
        window_d=days,
    )


def _check_influencer(info: AttributeInfo, path: str) -> None:
    if info.kind in ("mixed", "other"):
        raise InsightError(
            "wrong_kind",
            f"attribute {info.name!r} (at {path}) holds {info.kind} values; an influencing "
            "attribute must be numeric, boolean or categorical",
            path,
        )
    if info.kind in ("boolean", "categorical") and info.distinct > MAX_CATEGORIES:
        raise InsightError(
            "too_many_categories",
            f"attribute {info.name!r} (at {path}) has {info.distinct} distinct values; at most "
            f"{MAX_CATEGORIES} are used as influencing categories",
            path,
        )


def _primary(info: AttributeInfo, target: Any) -> tuple[bool, Any]:
    """(numeric?, target value for a categorical primary)."""
    if info.kind == "numeric":
        if target is not None:
            raise InsightError(
                "invalid_value", f"{info.name!r} is numeric: 'target' does not apply", "target"
            )
        return True, None
    if info.kind not in ("boolean", "categorical"):
        raise InsightError(
            "wrong_kind",
            f"primary attribute {info.name!r} holds {info.kind} values; it must be numeric or "
            f"categorical with at most {MAX_PRIMARY_CATEGORIES} values",
            "primary",
        )
    if info.distinct > MAX_PRIMARY_CATEGORIES:
        raise InsightError(
            "too_many_categories",
            f"primary attribute {info.name!r} has {info.distinct} distinct values; at most "
            f"{MAX_PRIMARY_CATEGORIES} are allowed",
            "primary",
        )
    if target is None:
        target = True if info.kind == "boolean" else info.values.most_common()[-1][0]
    if target not in info.values or type(target) is not type(next(iter(info.values))):
        seen = ", ".join(label(v) for v in info.values)
        raise InsightError(
            "invalid_value",
            f"target {target!r} is not a value of {info.name!r} (seen: {seen})",
            "target",
        )
    return False, target


def suggest_for_measure(
    customers: Sequence[CustomerData],
    primary: str,
    using: Sequence[str],
    now_ms: int,
    target: Any = None,
    max_depth: int = 3,
    min_group: int | None = None,
) -> dict[str, Any]:
    """Groups where `primary` differs from the average, as definitions (highest value first)."""
    infos = describe_attributes(customers)
    numeric_primary, target = _primary(require_attribute(infos, primary, "primary"), target)
    names = list(using) or [
        n for n, i in infos.items()
        if n != primary and (i.kind == "numeric"
                             or (i.kind in ("boolean", "categorical")
                                 and i.distinct <= MAX_CATEGORIES))
    ]  # fmt: skip
    if not names:
        raise InsightError("invalid_value", "no influencing attributes to use", "using")
    # the population: customers with a value of the primary attribute
    population = [c for c in customers if _y(c, primary, numeric_primary, target) is not None]
    if len(population) < 10:
        raise InsightError(
            "too_few_customers",
            f"only {len(population)} customers have {primary!r}; at least 10 are needed",
            "primary",
        )
    training = population
    if len(training) > MAX_TRAINING_ROWS:
        training = random.Random(0).sample(population, MAX_TRAINING_ROWS)
    columns: list[npt.NDArray[np.float64]] = []
    meaning: list[_Binned | OneHot] = []
    for i, name in enumerate(names):
        path = f"using[{i}]"
        if name == primary:
            raise InsightError(
                "invalid_value", f"{name!r} is the primary attribute (at {path})", path
            )
        if name.startswith("event:"):
            feature = _activity_feature(name, path)
            binned = _Binned(feature, [feature.value(c, now_ms) for c in training])
            columns.append(binned.column)
            meaning.append(binned)
            continue
        info = require_attribute(infos, name, path)
        _check_influencer(info, path)
        if info.kind == "numeric":
            feature = NumericFeature(name, attr=name)
            binned = _Binned(feature, [feature.value(c, now_ms) for c in training])
            columns.append(binned.column)
            meaning.append(binned)
        else:
            for value, _n in info.values.most_common():
                hot = OneHot(name, value)
                columns.append(np.asarray([hot.value_of(c) for c in training]))
                meaning.append(hot)
    x = np.column_stack(columns)
    y = np.asarray([_y(c, primary, numeric_primary, target) for c in training], dtype=np.float64)
    leaf = min_group or max(20, len(training) // 50)
    tree = DecisionTreeRegressor(max_depth=max_depth, min_samples_leaf=leaf, random_state=0)
    tree.fit(x, y)
    paths = _leaf_paths(tree, meaning)
    values = [float(v) for c in population if (v := _y(c, primary, numeric_primary, target))
              is not None]  # fmt: skip
    overall = sum(values) / len(values)
    suggestions = []
    for steps in paths:
        where = conjunction(steps)
        suggestions.append(
            _describe(
                where,
                customers,
                population,
                values,
                overall,
                primary,
                numeric_primary,
                target,
                now_ms,
                len(paths),
            )
        )
    suggestions.sort(key=lambda s: -s["value_in_group"])
    what = f"average {primary}" if numeric_primary else f"{primary} = {label(target)}"
    return {
        "primary": primary,
        "kind": "numeric" if numeric_primary else "categorical",
        "target": target,
        "measure": what,
        "using": names,
        "customers": len(population),
        "training_rows": len(training),
        "max_training_rows": MAX_TRAINING_ROWS,
        "overall_value": round(overall, 4),
        "test": ("Welch's t-test" if numeric_primary else "two-proportion z-test")
        + f", group vs rest, alpha {ALPHA} Bonferroni-corrected over {len(paths)} groups",
        "suggestions": suggestions,
    }


def _y(customer: CustomerData, primary: str, numeric: bool, target: Any) -> float | None:
    value = customer.attrs.get(primary)
    if value is None:
        return None
    if numeric:
        return float(value) if is_number(value) else None
    return 1.0 if type(value) is type(target) and value == target else 0.0


def _leaf_paths(tree: DecisionTreeRegressor, meaning: list[_Binned | OneHot]) -> list[list[Step]]:
    t = tree.tree_
    paths: list[list[Step]] = []

    def walk(node: int, steps: list[Step]) -> None:
        left, right = int(t.children_left[node]), int(t.children_right[node])
        if left == -1:
            paths.append(steps)
            return
        what = meaning[int(t.feature[node])]
        split = float(t.threshold[node])
        if isinstance(what, OneHot):
            walk(left, [*steps, Step(what, 0.5, False)])
            walk(right, [*steps, Step(what, 0.5, True)])
        else:
            threshold = what.threshold(split)
            walk(left, [*steps, Step(what.feature, threshold, False)])
            walk(right, [*steps, Step(what.feature, threshold, True)])

    walk(0, [])
    return paths


def _describe(
    where: dict[str, Any],
    customers: Sequence[CustomerData],
    population: Sequence[CustomerData],
    values: list[float],
    overall: float,
    primary: str,
    numeric: bool,
    target: Any,
    now_ms: int,
    groups: int,
) -> dict[str, Any]:
    sid = suggestion_id("measure", where)
    definition = {
        "id": slug(f"{primary}-{sid}", 64),
        "name": f"Suggested: {primary} group {sid.split('-')[-1]}",
        "description": f"suggested by a decision tree explaining {primary}",
        "tags": ["suggested"],
        "rules": [{"where": where}],
    }
    inside = evaluate_definition(definition, population, now_ms)
    group = [v for v, hit in zip(values, inside, strict=True) if hit]
    rest = [v for v, hit in zip(values, inside, strict=True) if not hit]
    mean = sum(group) / len(group) if group else 0.0
    if numeric:
        p = welch_t_test(group, rest)
        text = f"average {primary} {_fmt(mean)} vs {_fmt(overall)}"
    else:
        p = two_proportion_z_test(int(sum(group)), len(group), int(sum(rest)), len(rest))
        text = f"{primary} = {label(target)}: {100 * mean:.0f} % vs {100 * overall:.0f} %"
    lift = mean / overall if overall else None
    if lift is not None:
        text += f", {lift:.1f}x"
    everyone = evaluate_definition(definition, customers, now_ms)
    members = sorted(c.customer_id for c, hit in zip(customers, everyone, strict=True) if hit)
    return {
        "suggestion_id": sid,
        "definition": definition,
        "size": len(members),
        "group_with_value": len(group),
        "value_in_group": round(mean, 4),
        "overall_value": round(overall, 4),
        "lift": None if lift is None else round(lift, 3),
        "p_value": float(f"{p:.3g}"),
        "significant": p < ALPHA / max(1, groups),
        "text": text,
        "preview": members[:20],
    }


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
