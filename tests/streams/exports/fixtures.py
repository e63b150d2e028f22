"""Export fixtures: profiles and members written straight into Redis (no worker needed)."""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from state import KeySpace, PartitionBatch, PartitionStore, Profile
from streams.exports import ExportContext
from streams.exports.policy import ExportPolicy

PARTITIONS = 3


def partition_of(customer_id: str) -> int:
    return zlib.crc32(customer_id.encode()) % PARTITIONS


async def put_customers(
    redis: Redis,
    keyspace: KeySpace,
    customers: Mapping[str, Mapping[str, Any]],
    members: Mapping[str, bool] | None = None,
    segment_id: str = "seg",
) -> None:
    """Upsert profiles (customer id -> attributes) and set their membership of `segment_id`
    (customer id -> member), one fenced commit per partition, like the worker does."""
    members = members if members is not None else dict.fromkeys(customers, True)
    for partition in range(PARTITIONS):
        store = PartitionStore(redis, keyspace, partition)
        meta = await store.load_meta()
        batch = PartitionBatch(store.keys, meta)
        here = [c for c in {**customers, **members} if partition_of(c) == partition]
        for customer_id, stored in zip(here, await store.load_profiles(here), strict=True):
            if stored is None:  # new: numbered by the commit
                stored = Profile(customer_id)
                batch.new_customers.append(customer_id)
            if customer_id in customers:
                stored.attrs = dict(customers[customer_id])
            batch.profiles[customer_id] = stored
        for customer_id, member in members.items():
            if partition_of(customer_id) == partition:
                batch.set_member(segment_id, customer_id, member)
        await store.commit(meta.ver, batch)


@pytest.fixture
def ctx(aredis: Redis, keyspace: KeySpace, kafka_bootstrap: str, tmp_path: Path) -> ExportContext:
    """A context whose export root is the test's `tmp_path`."""
    return ExportContext(
        redis=aredis,
        keyspace=keyspace,
        partitions=PARTITIONS,
        kafka_bootstrap=kafka_bootstrap,
        now_ms=lambda: int(time.time() * 1000),
        policy=ExportPolicy(os.path.realpath(tmp_path)),
    )
