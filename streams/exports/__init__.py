"""Exports: deliver segments' members to Kafka topics, files or webhooks (see docs/exports.md)."""

from .errors import ExportError
from .model import (
    Destination,
    ExportDefinition,
    FilesDestination,
    KafkaDestination,
    WebhookDestination,
    export_to_json,
    parse_export,
)
from .runner import ExportContext, SegmentRunResult, run_export_segment

__all__ = [
    "Destination",
    "ExportContext",
    "ExportDefinition",
    "ExportError",
    "FilesDestination",
    "KafkaDestination",
    "SegmentRunResult",
    "WebhookDestination",
    "export_to_json",
    "parse_export",
    "run_export_segment",
]
