"""Prometheus metrics of the worker, served at /metrics."""

from __future__ import annotations

import functools
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = [
    "ACTIVE_SEGMENTS",
    "COMMAND_FAILURES",
    "DLQ_MESSAGES",
    "DUPLICATES",
    "EVALUATIONS",
    "EVENTS_PROCESSED",
    "EXPIRIES",
    "MEMBERSHIP_CHANGES",
    "OUTBOX_DROPPED",
    "PROCESSING_LATENCY",
    "REGISTRY",
    "RETRIES",
    "TASK_CUSTOMERS",
]

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_PROCESSED = Counter(
    "livesegments_events_processed_total",
    "Input events applied to customer profiles",
    ["partition"],
    registry=REGISTRY,
)
DUPLICATES = Counter(
    "livesegments_events_duplicate_total",
    "Input events dropped because their event_id was already applied",
    registry=REGISTRY,
)
EVALUATIONS = Counter(
    "livesegments_evaluations_total",
    "Segment evaluations for one customer",
    ["cause"],
    registry=REGISTRY,
)
MEMBERSHIP_CHANGES = Counter(
    "livesegments_membership_changes_total",
    "Membership changes published",
    ["change", "cause"],
    registry=REGISTRY,
)
DLQ_MESSAGES = Counter(
    "livesegments_dlq_messages_total",
    "Input messages sent to the dead-letter topic",
    ["code"],
    registry=REGISTRY,
)
EXPIRIES = Counter(
    "livesegments_expiries_total",
    "Customers re-evaluated because a time window moved",
    registry=REGISTRY,
)
TASK_CUSTOMERS = Counter(
    "livesegments_task_customers_total",
    "Customers evaluated by activate/refresh/update/deactivate/delete tasks",
    ["action"],
    registry=REGISTRY,
)
PROCESSING_LATENCY = Histogram(
    "livesegments_batch_seconds",
    "Time to apply, commit and publish one batch of one partition",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
RETRIES = Counter(
    "livesegments_retries_total",
    "Retries of a batch or run after an infrastructure failure, by plane and exception type",
    ["plane", "cause"],
    registry=REGISTRY,
)
OUTBOX_DROPPED = Counter(
    "livesegments_outbox_dropped_total",
    "Outbox records Kafka can never accept (too large, invalid topic), dropped and logged",
    ["topic", "cause"],
    registry=REGISTRY,
)
ACTIVE_SEGMENTS = Gauge(
    "livesegments_active_segments",
    "Active segments in the registry",
    registry=REGISTRY,
)
COMMAND_FAILURES = Counter(
    "livesegments_command_failures_total",
    "Control commands whose handling raised unexpectedly (answered 'internal', skipped)",
    ["code"],
    registry=REGISTRY,
)


@functools.cache
def membership_changes(entered: bool, cause: str) -> Any:
    """The labelled counter, looked up once (labels() costs more than inc() on hot paths)."""
    return MEMBERSHIP_CHANGES.labels("entered" if entered else "exited", cause)


@functools.cache
def evaluations(cause: str) -> Any:
    return EVALUATIONS.labels(cause)
