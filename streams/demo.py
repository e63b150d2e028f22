"""`livesegments demo`: a sample population, a few example segments, and changes as they flow."""

from __future__ import annotations

import random
import time
from typing import Any

from .client import Client
from .settings import Settings

__all__ = ["EXAMPLE_SEGMENTS", "run_demo"]

EXAMPLE_SEGMENTS: list[dict[str, Any]] = [
    {
        "id": "demo-vip-de",
        "name": "VIP customers in Germany",
        "tags": ["demo"],
        "rules": [
            {
                "where": {
                    "all": [
                        {"attr": "country", "op": "eq", "value": "DE"},
                        {"attr": "tier", "op": "in", "value": ["gold", "platinum"]},
                    ]
                }
            }
        ],
    },
    {
        "id": "demo-big-spenders",
        "name": "Spent 300 or more",
        "tags": ["demo"],
        "rules": [
            {
                "where": {
                    "event": "purchase",
                    "agg": "sum",
                    "prop": "amount",
                    "op": "gte",
                    "value": 300,
                }
            }
        ],
    },
    {
        "id": "demo-active-now",
        "name": "Visited twice in the last 20 seconds",
        "description": "members leave by themselves as their visits age out of the window",
        "tags": ["demo"],
        "rules": [
            {
                "where": {
                    "event": "page_view",
                    "agg": "count",
                    "within": "20s",
                    "op": "gte",
                    "value": 2,
                }
            }
        ],
    },
    {
        "id": "demo-vip-not-spending",
        "name": "German VIPs who have not spent 300",
        "tags": ["demo"],
        "rules": [
            {"where": {"in_segment": "demo-vip-de"}},
            {"op": "except", "where": {"in_segment": "demo-big-spenders"}},
        ],
    },
]

_COUNTRIES = ["DE", "FR", "AT", "NL", "US"]
_TIERS = ["bronze", "silver", "gold", "platinum"]


def _wait_for_worker(client: Client, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.command({"command": "refresh", "all": True}, timeout=15)
            return
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
            print("waiting for the worker to join its consumer group...", flush=True)


def run_demo(settings: Settings, customers: int = 500, seconds: float | None = None) -> int:
    rng = random.Random(42)
    client = Client(settings)
    _wait_for_worker(client)
    for definition in EXAMPLE_SEGMENTS:
        reply = client.command(
            {"command": "create", "activate": True, "segment": definition}, timeout=60
        )
        if reply["ok"]:
            print(f"segment {definition['id']!r} created and active", flush=True)
        elif reply["error"]["code"] == "already_exists":
            print(f"segment {definition['id']!r} already exists", flush=True)
        else:
            print(f"segment {definition['id']!r}: {reply['error']['message']}", flush=True)
    ids = [f"demo-{n:04d}" for n in range(customers)]
    for customer in ids:
        client.send_event(
            customer,
            "profile",
            {"country": rng.choice(_COUNTRIES), "tier": rng.choice(_TIERS), "email_opt_in": True},
        )
    client.flush()
    print(f"published {customers} customer profiles; now a trickle of activity:", flush=True)
    started = time.monotonic()
    last_report = 0.0
    try:
        while seconds is None or time.monotonic() - started < seconds:
            for _ in range(10):
                customer = rng.choice(ids)
                roll = rng.random()
                if roll < 0.6:
                    client.send_event(customer, "page_view", {"path": "/"})
                elif roll < 0.9:
                    client.send_event(customer, "purchase", {"amount": rng.randint(20, 200)})
                else:
                    client.send_event(customer, "profile", {"tier": rng.choice(_TIERS)})
            client.flush()
            seen = len(client.fold.changes)
            fold = client.poll_membership()
            for change in fold.changes[seen:][-5:]:
                print(
                    f"  {change['customer_id']} {change['change']:7} {change['segment_id']:24} "
                    f"({change['cause']})",
                    flush=True,
                )
            if time.monotonic() - last_report > 5:
                last_report = time.monotonic()
                counts = ", ".join(
                    f"{s['id']}={len(fold.members.get(s['id'], ()))}" for s in EXAMPLE_SEGMENTS
                )
                print(f"members: {counts}", flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0
