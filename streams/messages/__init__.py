"""Every message that crosses a topic, as frozen dataclasses with their encoding.

`events`: the input edge (events and commands decoded, with the dead-letter codes; membership
changes encoded); `dead_letters`: what the dead-letter topic carries; `tasks`: the task
messages the control plane writes into the events partitions and the partitions' reports.
Nothing past these modules sees raw bytes.
"""

from .dead_letters import DeadLetter, safe_text
from .events import (
    TASK_HEADER,
    Event,
    Incoming,
    decode_event,
    decode_map,
    encode,
    membership_change,
)
from .tasks import FORGED_TASK, SegmentOutcome, TaskMessage, TaskReport, task_digest

__all__ = [
    "FORGED_TASK",
    "TASK_HEADER",
    "DeadLetter",
    "Event",
    "Incoming",
    "SegmentOutcome",
    "TaskMessage",
    "TaskReport",
    "decode_event",
    "decode_map",
    "encode",
    "membership_change",
    "safe_text",
    "task_digest",
]
