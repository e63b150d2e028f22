"""Redis-backed stores: every key layout and script of livesegments lives in this package."""

import livesegments_compiled  # noqa: F401  (the compiled build's finder, first)

from .errors import FencedError, StateError
from .jobs import Task
from .keys import KeySpace, PartitionKeys
from .outbox import OutboxRecord, unpack_records
from .partition import (
    AppliedSegment,
    PartitionBatch,
    PartitionMeta,
    PartitionStore,
    profile_from_writes,
)
from .profile import Profile, ProfileSnapshot
from .registry import Job, RegistryBatch, RegistryMeta, RegistryStore, StoredSegment

__all__ = [
    "AppliedSegment",
    "FencedError",
    "Job",
    "KeySpace",
    "OutboxRecord",
    "PartitionBatch",
    "PartitionKeys",
    "PartitionMeta",
    "PartitionStore",
    "Profile",
    "ProfileSnapshot",
    "RegistryBatch",
    "RegistryMeta",
    "RegistryStore",
    "StateError",
    "StoredSegment",
    "Task",
    "profile_from_writes",
    "unpack_records",
]
