"""Run one export for one segment: count, check the destination's limit, deliver.

A run never raises for a delivery problem: it returns a `SegmentRunResult` (Successful,
Failure with the errors, or Skipped with the reason), for the jobs layer to record.
"""

from __future__ import annotations

import logging

from .context import ExportContext, SegmentRunResult
from .files import deliver_files
from .kafka import deliver_kafka
from .model import ExportDefinition, FilesDestination, KafkaDestination, WebhookDestination
from .urls import scrub
from .webhook import deliver_webhook

__all__ = ["ExportContext", "SegmentRunResult", "run_export_segment"]

log = logging.getLogger(__name__)


def _shown(destination: object, text: str) -> str:
    """`text` as it may be shown: a webhook URL's credentials masked."""
    return scrub(text, destination.url) if isinstance(destination, WebhookDestination) else text


def _limit(export: ExportDefinition) -> int | None:
    return export.destination.max_profiles


async def run_export_segment(
    ctx: ExportContext, export: ExportDefinition, segment_id: str, run_id: str
) -> SegmentRunResult:
    """Deliver `segment_id`'s members to the export's destination, as run `run_id`."""
    try:
        total = (await ctx.reads.member_counts([segment_id]))[segment_id]
    except Exception as exc:  # a state read failure is this run's failure, not a crash
        log.exception("export %s segment %s run %s: count failed", export.id, segment_id, run_id)
        return SegmentRunResult("Failure", 0, f"reading the members failed: {exc}", (repr(exc),))
    limit = _limit(export)
    if limit is not None and total > limit:
        reason = (
            f"segment {segment_id!r} has {total} members, over the destination's limit of "
            f"{limit} profiles per run (max_profiles); nothing was delivered"
        )
        return SegmentRunResult("Skipped", total, reason, (), {"members": total, "limit": limit})
    destination = export.destination
    try:
        if isinstance(destination, KafkaDestination):
            return await deliver_kafka(ctx, export, destination, segment_id, run_id)
        if isinstance(destination, FilesDestination):
            return await deliver_files(ctx, export, destination, segment_id, run_id)
        if isinstance(destination, WebhookDestination):
            return await deliver_webhook(ctx, export, destination, segment_id, run_id)
    except Exception as exc:
        # a webhook's traceback could show its URL unmasked: that one is logged without
        log.error(
            "export %s segment %s run %s failed: %s",
            export.id, segment_id, run_id, _shown(destination, repr(exc)),
            exc_info=not isinstance(destination, WebhookDestination),
        )  # fmt: skip
        reason = _shown(destination, f"delivery failed: {type(exc).__name__}: {exc}")
        return SegmentRunResult("Failure", 0, reason, (reason,))
    raise TypeError(f"unknown destination {destination!r}")  # unreachable: a closed union
