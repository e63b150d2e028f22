"""What an export may name on this installation: folders under the export root, foreign topics.

`ExportPolicy.check` runs when a definition is created or changed (the control agent) and
again before each run (the exporter), so a definition stored before a setting changed cannot
escape either. A files destination's ``directory`` is relative to the root (``crm``), or an
absolute path inside it; ``..`` leading out of the root and symbolic links below it are
refused (the files destination opens every folder with ``O_NOFOLLOW`` as well).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..settings import Settings
from ..topics import export_runs_topic
from .errors import ExportError
from .model import ExportDefinition, FilesDestination, KafkaDestination

__all__ = ["ExportPolicy"]


@dataclass(frozen=True)
class ExportPolicy:
    export_root: str
    """Absolute and resolved (`from_settings` resolves LS_EXPORT_ROOT against the cwd)."""
    reserved_topics: dict[str, str] = field(default_factory=dict)
    """Topic name -> what livesegments uses it for."""
    reserved_prefixes: tuple[str, ...] = ("__",)

    @classmethod
    def from_settings(cls, settings: Settings) -> ExportPolicy:
        topics = {
            settings.events_topic: "the events topic (LS_EVENTS_TOPIC)",
            settings.control_topic: "the control topic (LS_CONTROL_TOPIC)",
            settings.replies_topic: "the replies topic (LS_REPLIES_TOPIC)",
            settings.membership_topic: "the membership topic (LS_MEMBERSHIP_TOPIC)",
            settings.dlq_topic: "the dead-letter topic (LS_DLQ_TOPIC)",
            export_runs_topic(settings): "the internal export-runs topic",
        }
        return cls(os.path.realpath(settings.export_root), topics, ("__", f"{settings.app_id}-"))

    def check(self, defn: ExportDefinition) -> None:
        """Raise ExportError when the definition names a reserved topic or a folder outside."""
        destination = defn.destination
        if isinstance(destination, KafkaDestination):
            self._check_topic(destination.topic, "destination.topic")
        elif isinstance(destination, FilesDestination):
            self.folder_parts(destination.directory, "destination.directory")

    def _check_topic(self, topic: str, path: str) -> None:
        role = self.reserved_topics.get(topic)
        if role is None and topic.startswith(self.reserved_prefixes):
            role = "an internal topic (Kafka's or the worker's own, prefix " + ", ".join(
                repr(p) for p in self.reserved_prefixes if topic.startswith(p)
            )
            role += ")"
        if role is not None:
            raise ExportError(
                "reserved_topic",
                f"topic {topic!r} at {path} is {role}; an export may not write to livesegments' "
                "own topics: name a topic of its own, e.g. 'crm.segments'",
                path,
            )

    def folder_parts(self, directory: str, path: str) -> tuple[str, ...]:
        """The folders from the export root down to `directory`; ExportError when outside."""
        root = Path(self.export_root)
        full = Path(os.path.normpath(root / directory))  # an absolute directory stays absolute
        if full != root and root not in full.parents:
            raise ExportError(
                "outside_export_root",
                f"directory {directory!r} at {path} is outside the export root {str(root)!r} "
                "(LS_EXPORT_ROOT); give a folder inside it, e.g. 'crm' for "
                f"{str(root / 'crm')!r}",
                path,
            )
        parts = full.relative_to(root).parts
        for depth in range(1, len(parts) + 1):
            step = root.joinpath(*parts[:depth])
            if step.is_symlink():
                raise ExportError(
                    "symlink_in_export_root",
                    f"directory {directory!r} at {path} goes through {str(step)!r}, a symbolic "
                    f"link (to {os.readlink(step)!r}); exports never follow links below the "
                    "export root (LS_EXPORT_ROOT), so that none leads out of it: use a real folder",
                    path,
                )
        return parts
