"""Similar customers (lookalikes): a members-vs-non-members classifier scores non-members.

Features: numeric attributes, booleans, categorical attributes with 2..`MAX_CATEGORIES`
values (one-hot; other attributes are left out with the reason), and activity features
(`features.activity_features`). The model is scikit-learn's HistGradientBoostingClassifier
with balanced class weights, so a score reads as "how member-like" rather than as the
(small) prior share of members. Every customer is scored out of fold (4-fold stratified
cross-fitting): no customer is scored by a model that saw it, and the out-of-fold ROC AUC is
the stated hold-out quality. Above `MAX_TRAINING_ROWS` customers, non-members are sampled
(seeded) for training; every non-member is still scored.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from .bands import BANDS, band_of
from .data import CustomerData, describe_attributes
from .errors import InsightError
from .features import Feature, NumericFeature, activity_features, matrix, one_hots

__all__ = ["BANDS", "MAX_CATEGORIES", "MAX_TRAINING_ROWS", "find_lookalikes", "grade"]

MAX_CATEGORIES = 30
MAX_TRAINING_ROWS = 100_000
FOLDS = 4


def grade(auc: float) -> str:
    if auc >= 0.9:
        return "excellent"
    if auc >= 0.8:
        return "good"
    if auc >= 0.7:
        return "fair"
    if auc >= 0.6:
        return "weak"
    return "poor: the members look like everyone else"


def _features(
    customers: Sequence[CustomerData], attributes: Sequence[str] | None
) -> tuple[list[Feature], list[dict[str, str]]]:
    infos = describe_attributes(customers)
    if attributes:
        for i, name in enumerate(attributes):
            if name not in infos:
                raise InsightError(
                    "unknown_attribute",
                    f"no customer has an attribute {name!r} (at attributes[{i}])",
                    f"attributes[{i}]",
                )
    chosen = list(attributes) if attributes else list(infos)
    features: list[Feature] = []
    left_out: list[dict[str, str]] = []
    for name in chosen:
        info = infos[name]
        if info.kind == "numeric":
            features.append(NumericFeature(name, attr=name))
        elif info.kind in ("boolean", "categorical") and 2 <= info.distinct <= MAX_CATEGORIES:
            features.extend(one_hots(info))
        else:
            why = (
                f"{info.distinct} distinct values (one-hot needs 2..{MAX_CATEGORIES})"
                if info.kind in ("boolean", "categorical")
                else f"{info.kind} values"
            )
            left_out.append({"attribute": name, "reason": why})
    if not attributes:
        features.extend(activity_features(customers))
    return features, left_out


def _fit_fold(
    x: npt.NDArray[np.float64],
    y: npt.NDArray[np.int_],
    fit_idx: npt.NDArray[np.int_],
    held_idx: npt.NDArray[np.int_],
    x_others: npt.NDArray[np.float64],
    out_of_fold: npt.NDArray[np.float64],
    other_scores: npt.NDArray[np.float64],
    seed: int,
) -> None:
    model = HistGradientBoostingClassifier(
        class_weight="balanced", max_iter=60, early_stopping=False, random_state=seed
    )
    model.fit(x[fit_idx], y[fit_idx])
    out_of_fold[held_idx] = model.predict_proba(x[held_idx])[:, 1]
    # non-members left out of training: averaged over the folds' models
    other_scores += model.predict_proba(x_others)[:, 1] / FOLDS


def find_lookalikes(
    customers: Sequence[CustomerData],
    members: set[str],
    now_ms: int,
    size: int | None = None,
    min_score: float = 0.4,
    attributes: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Score non-members 0..1; keep the best `size` (default 20 % of the source) >= min_score."""
    source = [c for c in customers if c.customer_id in members]
    others = [c for c in customers if c.customer_id not in members]
    if not source:
        raise InsightError("empty_segment", "the source segment has no members", "source")
    if len(source) < FOLDS * 2 or len(others) < FOLDS * 2:
        raise InsightError(
            "too_few_customers",
            f"need at least {FOLDS * 2} members and non-members, got {len(source)} and "
            f"{len(others)}",
            "source",
        )
    if not 0 <= min_score <= 1:
        raise InsightError("invalid_value", f"min_score {min_score} is not in 0..1", "min_score")
    features, left_out = _features(customers, attributes)
    if not features:
        raise InsightError("invalid_value", "no attribute qualifies as a feature", "attributes")
    rng = random.Random(seed)
    budget = max(len(source), MAX_TRAINING_ROWS - len(source))
    training_others = others if len(others) <= budget else rng.sample(others, budget)
    train = [*source, *training_others]
    x = matrix(features, train, now_ms)
    y = np.asarray([1] * len(source) + [0] * len(training_others))
    x_all_others = matrix(features, others, now_ms)
    out_of_fold = np.zeros(len(train))
    other_scores = np.zeros(len(others))
    index_in_train = {c.customer_id: i for i, c in enumerate(train)}
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    with threadpool_limits(1):  # one core: the worker keeps the other
        for fit_idx, held_idx in folds.split(x, y):
            _fit_fold(x, y, fit_idx, held_idx, x_all_others, out_of_fold, other_scores, seed)
    for i, customer in enumerate(others):  # trained-on ones: their out-of-fold score
        at = index_in_train.get(customer.customer_id)
        if at is not None:
            other_scores[i] = out_of_fold[at]
    auc = float(roc_auc_score(y, out_of_fold))
    wanted = size if size is not None else max(1, round(0.2 * len(source)))
    ranked = sorted(
        ((float(s), c.customer_id) for s, c in zip(other_scores, others, strict=True)),
        key=lambda t: (-t[0], t[1]),
    )
    chosen = [(cid, round(s, 4)) for s, cid in ranked if s >= min_score][:wanted]
    bands = {name: 0 for name, _lo, _hi in BANDS}
    for _cid, score in chosen:
        band = band_of(score)
        if band is not None:
            bands[band] += 1
    return {
        "source_size": len(source),
        "non_members": len(others),
        "training_rows": len(train),
        "max_training_rows": MAX_TRAINING_ROWS,
        "features": [f.name for f in features],
        "left_out": left_out,
        "model": "HistGradientBoostingClassifier (balanced classes), 4-fold out-of-fold scores",
        "auc": round(auc, 4),
        "grade": grade(auc),
        "requested_size": wanted,
        "min_score": min_score,
        "size": len(chosen),
        "bands": [
            {"band": name, "from": lo, "to": hi, "customers": bands[name]} for name, lo, hi in BANDS
        ],
        "customers": [{"customer_id": cid, "score": s, "band": band_of(s)} for cid, s in chosen],
        "scores": {cid: s for s, cid in ranked},
    }
