"""Kafka destination: a full snapshot per run, as msgpack maps.

``begin`` (keyed by the segment id), one ``member`` per member keyed by its customer id, then
``end`` with the count (keyed by the segment id). A consumer rebuilds the segment from the
members between a begin and the end of the same ``run_id``; a run without an end is
incomplete (the worker died) and is ignored.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
from aiokafka import AIOKafkaProducer

from ._members import member_rows
from .context import ExportContext, SegmentRunResult
from .model import ExportDefinition, KafkaDestination

__all__ = ["deliver_kafka"]


def _pack(value: dict[str, Any]) -> bytes:
    return msgpack.packb(value, use_bin_type=True, default=str)  # type: ignore[no-any-return]


async def deliver_kafka(
    ctx: ExportContext,
    export: ExportDefinition,
    destination: KafkaDestination,
    segment_id: str,
    run_id: str,
) -> SegmentRunResult:
    producer = AIOKafkaProducer(
        bootstrap_servers=ctx.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        client_id=f"livesegments-export-{export.id}",
    )
    await producer.start()
    topic = destination.topic
    count = 0
    try:
        begin = {
            "type": "begin",
            "run_id": run_id,
            "export_id": export.id,
            "segment_id": segment_id,
            "at": ctx.now_ms(),
        }
        await producer.send_and_wait(topic, _pack(begin), key=segment_id.encode())
        async for rows in member_rows(ctx.reads, segment_id, export.attributes):
            sends = [
                await producer.send(
                    topic,
                    _pack(
                        {
                            "type": "member",
                            "run_id": run_id,
                            "customer_id": customer_id,
                            "attributes": attrs,
                        }
                    ),
                    key=customer_id.encode(),
                )
                for customer_id, attrs in rows
            ]
            await asyncio.gather(*sends)  # one page in flight at a time
            count += len(rows)
        end = {"type": "end", "run_id": run_id, "count": count}
        await producer.send_and_wait(topic, _pack(end), key=segment_id.encode())
    except Exception as exc:
        return SegmentRunResult(
            "Failure",
            count,
            f"publishing to topic {topic!r} failed after {count} members: {exc}",
            (repr(exc),),
            {"topic": topic},
        )
    finally:
        await producer.stop()
    return SegmentRunResult("Successful", count, None, (), {"topic": topic})
