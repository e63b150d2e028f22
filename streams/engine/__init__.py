"""The data plane: each events partition's state machine and the runtime around it.

`machine` applies events, expiries and tasks to profiles without I/O; `runtime` loads a
partition's state from Redis, runs the machine over a batch, commits state, offset and outbox
in one fenced script and publishes the outbox; `consumer` is the Kafka consumer setup the
worker's app uses. Nothing here imports the control plane.
"""

from .machine import EngineConfig, PartitionEngine, SegmentFailed, TaskStats, compiled_for
from .runtime import PartitionRuntime

__all__ = [
    "EngineConfig",
    "PartitionEngine",
    "PartitionRuntime",
    "SegmentFailed",
    "TaskStats",
    "compiled_for",
]
