"""Every message that crosses a topic, as frozen dataclasses with their encoding.

`events`: the input edge (events and commands decoded, with the dead-letter codes);
`outputs`: membership changes and command replies; `dead_letters`: what the dead-letter
topic carries; `tasks`: the task messages the control plane writes into the events
partitions and the partitions' reports; `exports`: export run requests and the exporter's
reports; `analyses`: the report of an analysis job.
Nothing past these modules sees raw bytes.
"""

from .analyses import ANALYSIS_COMMANDS, AnalysisReport
from .dead_letters import DeadLetter, safe_text
from .events import (
    TASK_HEADER,
    Event,
    Incoming,
    decode_event,
    decode_map,
    encode,
)
from .exports import ExportReport, ExportRun
from .outputs import MembershipChange, Reply, encode_change, encode_change_packed, pack_value
from .tasks import FORGED_TASK, SegmentOutcome, TaskMessage, TaskReport, task_digest

__all__ = [
    "ANALYSIS_COMMANDS",
    "FORGED_TASK",
    "TASK_HEADER",
    "AnalysisReport",
    "DeadLetter",
    "Event",
    "ExportReport",
    "ExportRun",
    "Incoming",
    "MembershipChange",
    "Reply",
    "SegmentOutcome",
    "TaskMessage",
    "TaskReport",
    "decode_event",
    "decode_map",
    "encode",
    "encode_change",
    "encode_change_packed",
    "pack_value",
    "safe_text",
    "task_digest",
]
