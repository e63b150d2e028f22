"""The commit build of one batch alone: membership-change records and the packed commit.

`engine_only` measures the whole engine; on a machine shared with other benchmarks its CPU
time moves by more than a change of this part. This times only what a batch does after the
rules ran, the minimum of many repeats (the least disturbed): `PartitionEngine._record` for
each membership change (the profile's set, `PartitionBatch.set_member`, `encode_change`, the
outbox record) and `PartitionBatch.writes()` packed as `fenced_commit` sends it (profiles
encoded, members' bits, timers, the outbox entry).

    .venv/bin/python -m benchmarks.commit_build            # 500 profiles, 1,030 changes a batch
"""

from __future__ import annotations

import argparse
import random
import time

import livesegments_compiled
from state import KeySpace, PartitionBatch, PartitionMeta, Profile
from state.commit import pack_ops
from streams.engine.machine import EngineConfig, PartitionEngine

from .workload import profile_event

__all__ = ["commit_build", "main"]

_NOW = 1_800_000_000_000


def commit_build(profiles: int, changes: int, segments: int, repeats: int) -> tuple[float, int]:
    """(the least CPU seconds of one batch's records and commit build over `repeats`, the
    packed commit's bytes)."""
    rng = random.Random(1)
    keys = KeySpace("bench").partition(0)
    engine = PartitionEngine(0, EngineConfig("membership", 100, 30 * 86_400_000), {})
    people = []
    for index in range(profiles):
        event = profile_event(rng, index, _NOW)
        profile = Profile(event["customer_id"])
        profile.upsert_attributes(event["properties"])
        profile.ordinal = index
        people.append(profile)
    segment_ids = [f"bench-{n:03d}" for n in range(segments)]
    best, size = float("inf"), 0
    for _ in range(repeats):
        started = time.process_time()
        batch = PartitionBatch(keys, PartitionMeta(0, -1, 0, None))
        for number in range(changes):
            profile = people[number % profiles]
            segment_id = segment_ids[(number * 7) % segments]
            member = segment_id not in profile.segments
            engine._record(batch, profile, segment_id, member, _NOW, "event", None)
        for profile in people:
            batch.profiles[profile.customer_id] = profile
            batch.timers[profile.customer_id] = _NOW + 1000
        payload = pack_ops(batch.writes().ops)
        engine.flush_metrics()
        best = min(best, time.process_time() - started)
        size = len(payload)
    return best, size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=500)
    parser.add_argument("--changes", type=int, default=1030)
    parser.add_argument("--segments", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    print(f"build: {livesegments_compiled.BUILD.describe()}", flush=True)
    best, size = commit_build(args.profiles, args.changes, args.segments, args.repeats)
    print(
        f"commit build: {best * 1e6:,.0f} µs per batch of {args.profiles} profiles and "
        f"{args.changes} changes (least of {args.repeats}); "
        f"{best * 1e6 / args.changes:.2f} µs per change all in; {size:,} B packed"
    )


if __name__ == "__main__":
    main()
