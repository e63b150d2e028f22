"""Every Redis key the project uses, in one place.

All keys of one events partition share the hash tag ``{<prefix>:p<N>}`` and all registry keys
share ``{<prefix>:registry}``: each atomic commit touches one tag only, so the layout works
unchanged on Redis Cluster (one slot per partition).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["KeySpace", "PartitionKeys", "RegistryKeys"]


@dataclass(frozen=True)
class PartitionKeys:
    tag: str

    @property
    def meta(self) -> str:
        """hash: ver (commit counter, the fence), offset (last applied), seq, task cursor,
        ord (the next customer ordinal), customers (how many are stored)."""
        return f"{self.tag}:meta"

    @property
    def catalog(self) -> str:
        """hash: segment id -> msgpack {version, definition} applied on this partition."""
        return f"{self.tag}:catalog"

    def ids(self, bucket: int) -> str:
        """hash: ordinal % 128 -> customer id, for the ordinals of `bucket` (ordinal // 128);
        small enough to stay listpack-encoded (see `state.ordinals`)."""
        return f"{self.tag}:o:{bucket}"

    @property
    def legacy_customers(self) -> str:
        """sorted set of every customer id: the layout before ordinals (`state.migrate`)."""
        return f"{self.tag}:customers"

    @property
    def timers(self) -> str:
        """sorted set: customer id -> epoch ms when a time window may change a membership."""
        return f"{self.tag}:timers"

    @property
    def outbox(self) -> str:
        """list: msgpack records committed with the state, not yet acknowledged by Kafka."""
        return f"{self.tag}:outbox"

    def profile(self, customer_id: str) -> str:
        """string: the customer's ordinal, then its msgpack profile (`state.ordinals`)."""
        return f"{self.tag}:c:{customer_id}"

    def members(self, segment_id: str) -> str:
        """bitmap: bit `ordinal` is set while that customer is a member of the segment."""
        return f"{self.tag}:b:{segment_id}"

    def legacy_members(self, segment_id: str) -> str:
        """set of customer ids: the layout before ordinals (`state.migrate`)."""
        return f"{self.tag}:m:{segment_id}"


@dataclass(frozen=True)
class RegistryKeys:
    tag: str

    @property
    def meta(self) -> str:
        """hash: ver (fence), offset (last applied control offset)."""
        return f"{self.tag}:meta"

    @property
    def segments(self) -> str:
        """hash: segment id -> msgpack stored segment (definition, state, version, times)."""
        return f"{self.tag}:segments"

    @property
    def requests(self) -> str:
        """hash: request id -> digest of the command, to drop redelivered commands."""
        return f"{self.tag}:requests"

    @property
    def requests_by_time(self) -> str:
        """sorted set: request id -> when it was applied (to forget old ones)."""
        return f"{self.tag}:requests:time"

    @property
    def jobs_by_time(self) -> str:
        """sorted set: job id -> when it was created (to forget old ones)."""
        return f"{self.tag}:jobs:time"

    @property
    def jobs(self) -> str:
        """hash: job id -> msgpack job (command, partitions done, results)."""
        return f"{self.tag}:jobs"

    @property
    def canceled_jobs(self) -> str:
        """hash: job id -> when it was canceled; partitions stop its tasks between chunks."""
        return f"{self.tag}:jobs:canceled"

    @property
    def outbox(self) -> str:
        return f"{self.tag}:outbox"

    @property
    def schedules(self) -> str:
        """hash: schedule id -> msgpack one-shot action (segment, activate/deactivate, at)."""
        return f"{self.tag}:schedules"

    @property
    def schedules_due(self) -> str:
        """sorted set: one-shot schedule id -> when it is due (epoch ms)."""
        return f"{self.tag}:schedules:due"

    @property
    def refresh_schedules(self) -> str:
        """hash: refresh schedule id -> msgpack recurring refresh (cron, time zone, segments)."""
        return f"{self.tag}:refresh-schedules"

    @property
    def refresh_due(self) -> str:
        """sorted set: refresh schedule id -> its next run (epoch ms)."""
        return f"{self.tag}:refresh-schedules:due"

    @property
    def exports(self) -> str:
        """hash: export id -> msgpack stored export (definition with secrets, times, schedule)."""
        return f"{self.tag}:exports"

    def suggestion(self, suggestion_id: str) -> str:
        """string, expiring (LS_SUGGESTION_TTL_S): msgpack suggested segment (definition,
        figures, when)."""
        return f"{self.tag}:suggestion:{suggestion_id}"

    def analysis_progress(self, job_id: str) -> str:
        """string, expiring: JSON progress of a running analysis job (stage, done, total)."""
        return f"{self.tag}:analysis-progress:{job_id}"

    @property
    def exports_due(self) -> str:
        """sorted set: export id -> its next scheduled run (epoch ms); scheduled exports only."""
        return f"{self.tag}:exports:due"


@dataclass(frozen=True)
class KeySpace:
    prefix: str = "ls"

    def partition(self, partition: int) -> PartitionKeys:
        return PartitionKeys(f"{{{self.prefix}:p{partition}}}")

    @property
    def registry(self) -> RegistryKeys:
        return RegistryKeys(f"{{{self.prefix}:registry}}")
