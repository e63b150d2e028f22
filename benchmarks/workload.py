"""The seeded synthetic workload: population, activity events and segment definitions.

Everything here is pure (no I/O) and depends only on the seed, so two runs with the same
arguments send the same customers, events and segments.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FLIP_SEGMENT",
    "Workload",
    "activity_event",
    "add_size_arguments",
    "backfill_segment",
    "customer_id",
    "profile_event",
    "segment_definitions",
]

FLIP_SEGMENT = "bench-flip"
"""The segment the latency phase toggles: `flag` eq true (every customer starts false)."""

_DAY_MS = 86_400_000
_COUNTRIES = ("DE", "FR", "US", "GB", "ES", "IT", "NL", "PL", "SE", "BR")
_COUNTRY_WEIGHTS = (18, 12, 20, 12, 8, 8, 6, 6, 4, 6)
_TIERS = ("bronze", "silver", "gold", "platinum")
_TIER_WEIGHTS = (50, 30, 15, 5)
_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "corp.example")
_LANGS = ("de", "fr", "en", "es", "it")
_CATEGORIES = ("books", "games", "garden", "fashion", "food", "tech")
_CURRENCIES = ("EUR", "USD", "GBP")
_PAGES = ("/", "/product/a", "/product/b", "/product/c", "/cart", "/help", "/search")
_DEVICES = ("ios", "android", "web")
_EVENT_TYPES = ("page_view", "purchase", "add_to_cart", "login", "profile")
_EVENT_WEIGHTS = (35, 25, 15, 15, 10)


def customer_id(index: int) -> str:
    return f"c{index:07d}"


def _event(eid: str, cid: str, etype: str, ts: int, props: dict[str, Any]) -> dict[str, Any]:
    return {"event_id": eid, "customer_id": cid, "type": etype, "ts": ts, "properties": props}


def profile_event(rng: random.Random, index: int, ts: int) -> dict[str, Any]:
    """The preload `profile` event of customer `index` (every attribute a segment reads)."""
    cid = customer_id(index)
    signup = ts - rng.randrange(1, 1500) * _DAY_MS
    props = {
        "country": rng.choices(_COUNTRIES, _COUNTRY_WEIGHTS)[0],
        "tier": rng.choices(_TIERS, _TIER_WEIGHTS)[0],
        "age": rng.randint(18, 85),
        "newsletter": rng.random() < 0.4,
        "lang": rng.choice(_LANGS),
        "email": f"{cid}@{rng.choice(_DOMAINS)}",
        "ltv": round(rng.uniform(0, 5000), 2),
        "signup_at": signup,
        "flag": False,
    }
    return _event(f"p-{cid}", cid, "profile", ts, props)


def activity_event(rng: random.Random, customers: int, seq: str, ts: int) -> dict[str, Any]:
    """One activity event of a skewed-random customer (low ids are more active)."""
    index = int(customers * rng.random() ** 2)
    cid = customer_id(index)
    etype = rng.choices(_EVENT_TYPES, _EVENT_WEIGHTS)[0]
    props: dict[str, Any]
    if etype == "page_view":
        props = {"page": rng.choice(_PAGES), "ms": rng.randint(100, 30_000)}
    elif etype == "purchase":
        props = {
            "amount": round(rng.expovariate(1 / 60), 2),
            "category": rng.choice(_CATEGORIES),
            "currency": rng.choice(_CURRENCIES),
        }
    elif etype == "add_to_cart":
        props = {"sku": f"sku-{rng.randrange(500)}", "price": round(rng.uniform(1, 300), 2)}
    elif etype == "login":
        props = {"device": rng.choice(_DEVICES)}
    else:
        props = rng.choice(
            (
                {"tier": rng.choices(_TIERS, _TIER_WEIGHTS)[0]},
                {"age": rng.randint(18, 85)},
                {"newsletter": rng.random() < 0.5},
                {"ltv": round(rng.uniform(0, 5000), 2)},
            )
        )
    return _event(f"e-{seq}", cid, etype, ts, props)


# -- segments -----------------------------------------------------------------------------
_Where = dict[str, Any]


def _attr(name: str, op: str, value: Any = None) -> _Where:
    cond: _Where = {"attr": name, "op": op}
    if value is not None:
        cond["value"] = value
    return cond


def _agg(event: str, agg: str, op: str, value: Any, **extra: Any) -> _Where:
    return {"event": event, "agg": agg, "op": op, "value": value, **extra}


def _templates(rng: random.Random, now: int) -> list[Callable[[], _Where]]:
    def countries(k: int) -> list[str]:
        return rng.sample(_COUNTRIES, k)

    return [
        lambda: _attr("country", "eq", rng.choice(_COUNTRIES)),
        lambda: {
            "all": [
                _attr("country", "in", countries(3)),
                _attr("tier", "in", rng.sample(_TIERS, 2)),
            ]
        },
        lambda: _attr("age", "between", sorted(rng.sample(range(18, 86), 2))),
        lambda: {
            "any": [
                {
                    "all": [
                        _attr("country", "eq", rng.choice(_COUNTRIES)),
                        _attr("age", "gte", rng.randint(25, 60)),
                    ]
                },
                _attr("tier", "eq", "platinum"),
            ]
        },
        lambda: {
            "all": [
                {"not": _attr("newsletter", "eq", True)},
                _attr("lang", "in", rng.sample(_LANGS, 2)),
            ]
        },
        lambda: _attr("email", "ends_with", rng.choice(_DOMAINS)),
        lambda: _attr("signup_at", "after", now - rng.randint(100, 1000) * _DAY_MS),
        lambda: _agg("purchase", "count", "gte", rng.randint(1, 4)),
        lambda: _agg("purchase", "sum", "gt", rng.randint(50, 400), prop="amount", within="30d"),
        lambda: _agg(
            "purchase",
            "sum",
            "gte",
            rng.randint(20, 200),
            prop="amount",
            filter={"prop": "category", "op": "eq", "value": rng.choice(_CATEGORIES)},
        ),
        lambda: _agg(
            "page_view",
            "count",
            "gte",
            rng.randint(1, 3),
            within="7d",
            filter={"prop": "page", "op": "starts_with", "value": "/product"},
        ),
        lambda: _agg("add_to_cart", "avg", "gt", rng.randint(50, 200), prop="price"),
        lambda: _agg("page_view", "distinct_count", "gte", rng.randint(2, 4), prop="page"),
        lambda: {
            "all": [
                _attr("tier", "in", ["gold", "platinum"]),
                _agg("purchase", "count", "gte", 2, within=f"{rng.choice((7, 14, 30))}d"),
            ]
        },
        lambda: _agg(
            "purchase",
            "max",
            "gt",
            rng.randint(50, 250),
            prop="amount",
            filter={
                "all": [
                    {"prop": "currency", "op": "eq", "value": rng.choice(_CURRENCIES)},
                    {"prop": "amount", "op": "gt", "value": 5},
                ]
            },
        ),
        lambda: {
            "all": [
                _attr("ltv", "gt", rng.randint(500, 4000)),
                _agg("login", "count", "gte", 1, within="14d"),
            ]
        },
    ]


def segment_definitions(count: int, seed: int, now: int) -> list[dict[str, Any]]:
    """`count` varied definitions: the flip segment, `in_segment` users, and templates."""
    rng = random.Random(seed * 1_000_003 + 17)
    templates = _templates(rng, now)
    segments: list[dict[str, Any]] = [
        {
            "id": FLIP_SEGMENT,
            "name": "Latency probe",
            "rules": [{"where": _attr("flag", "eq", True)}],
        }
    ]
    in_segment_every = 12  # about 8% use in_segment on earlier segments
    while len(segments) < count:
        i = len(segments)
        sid = f"bench-{i:03d}"
        earlier = [s["id"] for s in segments[1:]]
        if i % in_segment_every == 0 and len(earlier) >= 2:
            a, b = rng.sample(earlier, 2)
            where: _Where = {
                "any": [
                    {"all": [{"in_segment": a}, _attr("country", "in", rng.sample(_COUNTRIES, 4))]},
                    {"in_segment": b},
                ]
            }
            rules = [{"where": where}]
        elif i % 17 == 0:  # several rules combined with set operators
            rules = [
                {"where": templates[rng.randrange(len(templates))]()},
                {"op": rng.choice(("union", "intersect", "except")), "where": templates[0]()},
            ]
        else:
            rules = [{"where": templates[i % len(templates)]()}]
        segments.append({"id": sid, "name": f"Bench segment {i}", "rules": rules})
    return segments[:count]


def backfill_segment(seed: int) -> dict[str, Any]:
    """The segment whose activation over the whole population is timed."""
    rng = random.Random(seed + 99)
    return {
        "id": "bench-backfill",
        "name": "Backfill probe",
        "rules": [
            {
                "where": {
                    "any": [
                        _agg("purchase", "sum", "gt", 100, prop="amount", within="30d"),
                        {
                            "all": [
                                _attr("country", "in", rng.sample(_COUNTRIES, 3)),
                                _attr("age", "between", [30, 50]),
                            ]
                        },
                    ]
                }
            }
        ],
    }


@dataclass
class Workload:
    """The sizes and seed of a run, and the generators built on them."""

    customers: int
    segments: int
    events: int
    seed: int

    def profiles(self, ts: int) -> Iterator[dict[str, Any]]:
        rng = random.Random(self.seed)
        for index in range(self.customers):
            yield profile_event(rng, index, ts)

    def activity(self, end_ts: int, span_ms: int = 14 * _DAY_MS) -> Iterator[dict[str, Any]]:
        """The measured stream: `events` events, timestamps ascending over `span_ms`."""
        rng = random.Random(self.seed + 1)
        step = span_ms / max(self.events, 1)
        start = end_ts - span_ms
        for i in range(self.events):
            yield activity_event(rng, self.customers, f"{self.seed}-{i}", int(start + i * step))


def add_size_arguments(parser: argparse.ArgumentParser, seed: int = 1) -> None:
    """The sizes of a run (``--customers``, ``--segments``, ``--events``, ``--seed``,
    ``--partitions``) as the benchmarks that build a `Workload` take them."""
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--partitions", type=int, default=8)
