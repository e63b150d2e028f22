"""Seeded synthetic populations with planted structure."""

from __future__ import annotations

import random

from insights.data import Customer
from segment_rules import EventRecord

__all__ = ["DAY", "NOW", "planted_population"]

NOW = 1_800_000_000_000
DAY = 86_400_000
COUNTRIES = ("DE", "FR", "IT", "ES", "NL")


def planted_population(n: int = 2000, seed: int = 7) -> list[Customer]:
    """`country = DE and age < 30` drives a high `ltv` (about 4x); everything else is noise.

    Each customer also has 0..8 purchases with an `amount` over the last 120 days, and a
    boolean `newsletter` unrelated to anything.
    """
    rng = random.Random(seed)
    customers = []
    for i in range(n):
        country = rng.choice(COUNTRIES)
        age = rng.randint(18, 70)
        planted = country == "DE" and age < 30
        ltv = rng.gauss(800 if planted else 200, 60)
        events = sorted(
            (NOW - rng.randint(1, 120 * DAY), rng.randint(5, 200)) for _ in range(rng.randint(0, 8))
        )
        customers.append(
            Customer(
                f"c{i:05d}",
                {
                    "country": country,
                    "age": age,
                    "ltv": round(ltv, 2),
                    "newsletter": rng.random() < 0.5,
                    "tier": rng.choice(("gold", "silver", "bronze")),
                },
                {"purchase": [EventRecord(ts, {"amount": a}) for ts, a in events]},
            )
        )
    return customers
