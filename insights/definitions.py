"""Turning a model's path into a segment definition, and naming suggestions."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .features import NumericFeature, OneHot

__all__ = ["Step", "conjunction", "slug", "suggestion_id"]


@dataclass(frozen=True)
class Step:
    """One split on the way to a leaf: the feature, and the side taken.

    Numeric: ``at_least`` True means value >= threshold, False means "not >= threshold"
    (missing included). One-hot: ``at_least`` True means equal to the value.
    """

    feature: NumericFeature | OneHot
    threshold: float
    at_least: bool


def conjunction(steps: Sequence[Step]) -> dict[str, Any]:
    """The steps as one condition, tightest bound per feature, in first-use order."""
    order: list[str] = []
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    numeric: dict[str, NumericFeature] = {}
    equal: dict[str, Any] = {}
    unequal: dict[str, list[Any]] = {}
    for step in steps:
        feature = step.feature
        key = feature.name if isinstance(feature, NumericFeature) else feature.attr
        if key not in order:
            order.append(key)
        if isinstance(feature, OneHot):
            if step.at_least:
                equal[key] = feature.value
            else:
                unequal.setdefault(key, []).append(feature.value)
            continue
        numeric[key] = feature
        if step.at_least:
            lows[key] = max(lows.get(key, step.threshold), step.threshold)
        else:
            highs[key] = min(highs.get(key, step.threshold), step.threshold)
    parts: list[dict[str, Any]] = []
    for key in order:
        if key in equal:
            parts.append({"attr": key, "op": "eq", "value": equal[key]})
        elif key in unequal:
            values = unequal[key]
            if len(values) == 1:
                parts.append({"not": {"attr": key, "op": "eq", "value": values[0]}})
            else:
                parts.append({"not": {"attr": key, "op": "in", "value": values}})
        else:
            f = numeric[key]
            if key in lows:
                parts.append(f.at_least(lows[key]))
                if key in highs:
                    parts.append(f.below(highs[key]))
            else:
                parts.append({"not": f.at_least(highs[key])})
    if not parts:
        return {"not": {"attr": "__never__", "op": "exists"}}  # the root: everyone
    return parts[0] if len(parts) == 1 else {"all": parts}


_SLUG_BAD = re.compile(r"[^a-z0-9_-]+")


def slug(text: str, limit: int = 48) -> str:
    """A segment id fragment: lower case, [a-z0-9_-] only."""
    cleaned = _SLUG_BAD.sub("-", text.lower()).strip("-_") or "x"
    return cleaned[:limit].rstrip("-_")


def suggestion_id(kind: str, where: dict[str, Any]) -> str:
    """A short stable id for a suggestion: its kind and a digest of its condition."""
    digest = hashlib.blake2b(json.dumps(where, sort_keys=True).encode(), digest_size=4)
    return f"{kind}-{digest.hexdigest()}"
