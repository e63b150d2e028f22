"""Builds the Faust app: topics, agents, timers, rebalance hooks and web views."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest

from state import KeySpace
from state.connect import connect
from state.schedules import ScheduleStore

from . import metrics
from .agents import control as control_agent
from .agents import events as events_agent
from .agents import expiry as expiry_agent
from .agents import exporter as exporter_agent
from .agents import scheduler as scheduler_agent
from .agents import snapshots as snapshots_agent
from .control import ControlRuntime
from .engine import PartitionRuntime
from .engine.consumer import app_class, known_partitions
from .engine.group_offsets import GroupOffsets
from .engine.placement import PlacementCheck
from .publisher import Publisher
from .settings import Settings
from .stalls import STALLS
from .topics import export_runs_topic
from .web import register as register_api
from .web.ui import register as register_ui

__all__ = ["Worker", "create_app"]

log = logging.getLogger(__name__)


class Worker:
    """The app with its runtimes, for the CLI and for tests."""

    def __init__(self, app: Any, partitions: PartitionRuntime, control: ControlRuntime) -> None:
        self.app = app
        self.partitions = partitions
        self.control = control


def create_app(settings: Settings, events_partitions: int) -> Worker:
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    app = app_class(
        settings.fetch_max_wait_ms,
        batch_topics=[settings.events_topic],
        fetch_min_bytes=settings.fetch_min_bytes,
        fetch_on_loop=settings.events_fetch == "loop",
    )(
        settings.app_id,
        broker=[f"kafka://{b}" for b in settings.kafka_bootstrap.split(",")],
        store="memory://",
        datadir=f"{settings.data_dir}/{settings.app_id}-data",
        key_serializer="raw",
        value_serializer="raw",
        web_host="127.0.0.1",
        web_bind=settings.web_bind,  # faust's default is 0.0.0.0: every interface
        web_port=settings.web_port,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=settings.producer_linger_ms / 1000,
        topic_partitions=1,
        topic_replication_factor=settings.topic_replication,  # faust's own (leader) topic
        topic_allow_declare=True,
        stream_wait_empty=False,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_s / 3),
    )
    redis = connect(settings.redis_url)
    offsets = GroupOffsets(settings.kafka_bootstrap, settings.app_id, settings.events_topic)
    events = settings.events_topic
    placement = (
        PlacementCheck(events, lambda: known_partitions(app, events), events_partitions)
        if settings.check_partitioner
        else None
    )
    partitions = PartitionRuntime(
        settings, redis, Publisher(app, drop_undeliverable=True), offsets.committed, placement
    )
    control = ControlRuntime(
        settings, redis, Publisher(app, drop_undeliverable=False), events_partitions
    )

    def topic(name: str, count: int) -> Any:
        return app.topic(name, partitions=count, internal=False)

    events_topic = topic(settings.events_topic, events_partitions)
    control_topic = topic(settings.control_topic, 1)
    reader = events_agent.register(
        app, events_topic, partitions, settings.batch_size, settings.session_timeout_s / 2
    )
    control_agent.register(app, control_topic, control)
    expiry_agent.register(app, settings.events_topic, partitions, settings.expiry_poll_s)

    api = register_api(app, settings, redis, events_partitions)
    register_ui(app, api)
    snapshots_agent.register(
        app, api.reads, api.trends, settings.trend_interval_s, settings.trend_retention_s
    )

    keyspace = KeySpace(settings.key_prefix)
    scheduler_agent.register(app, settings, ScheduleStore(redis, keyspace), interval_s=0.2)
    exporter_agent.register(
        app, topic(export_runs_topic(settings), 1), settings, redis, events_partitions, 0.2
    )

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        # the batch in progress finishes and its offsets are committed before the group moves on
        await reader.revoked([tp.partition for tp in revoked if tp.topic == settings.events_topic])

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        # Kafka's committed offsets never pass what the state applied (EventsReader), so
        # faust resumes at or before the state's offset and the partitions skip what they
        # already applied. (Seeking here instead races faust's fetcher: aiokafka KeyError.)
        partitions.forget([tp.partition for tp in assigned if tp.topic == settings.events_topic])

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        # the exposition format, version 0.0.4 (aiohttp takes the charset separately)
        return web.bytes(generate_latest(metrics.REGISTRY), content_type="text/plain")

    @app.page("/health")
    async def health_view(web: Any, request: Any) -> Any:
        try:
            redis_ok = bool(await redis.ping())
        except Exception:
            redis_ok = False
        tps = sorted(
            tp for tp in app.assignor.assigned_actives() if tp.topic == settings.events_topic
        )
        lag: dict[str, int | None] = {}
        try:
            highwaters = await asyncio.wait_for(app.consumer.highwaters(*tps), 5)
            kafka_ok = True
        except Exception:
            highwaters, kafka_ok = {}, False
        for tp in tps:
            applied = partitions.applied_offset(tp.partition)
            end = highwaters.get(tp)
            done = applied + 1 if applied is not None else 0
            lag[str(tp.partition)] = None if end is None else end - done
        # retrying longer than the threshold, or refused (state behind Kafka)
        stalls = STALLS.report(settings.stall_threshold_s)
        healthy = redis_ok and kafka_ok and not stalls
        body = {
            "status": "ok" if healthy else "degraded",
            "redis": redis_ok,
            "kafka": kafka_ok,
            "leader": bool(app.is_leader()),  # runs the leader-only timers (schedules, trends)
            "events_partitions": [tp.partition for tp in tps],
            "lag": lag,
            "warming": partitions.warming(),  # profile caches still filling after assignment
            "stalls": stalls,
        }
        return web.json(body, status=200 if healthy else 503)

    return Worker(app, partitions, control)
