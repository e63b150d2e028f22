"""One frozen settings object; every field documented with its environment variable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any

from livesegments_error import LiveSegmentsError

__all__ = ["EVENTS_FETCHES", "EVENT_LOOPS", "Settings", "SettingsError"]

_DAY_MS = 86_400_000

EVENT_LOOPS = ("asyncio", "uvloop")
"""What `LS_EVENT_LOOP` may name."""

EVENTS_FETCHES = ("loop", "thread")
"""What `LS_EVENTS_FETCH` may name (`streams.engine.loop_fetcher`)."""


class SettingsError(LiveSegmentsError):
    """An environment variable holds a value the worker cannot use."""


def _env_field(env: str, default: Any, doc: str, secret: bool = False) -> Any:
    return field(default=default, metadata={"env": env, "doc": doc, "secret": secret})


def _parse_bool(raw: str) -> bool:
    text = raw.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)


@dataclass(frozen=True)
class Settings:
    """Worker configuration. `Settings.from_env()` reads each field from its variable."""

    kafka_bootstrap: str = _env_field(
        "KAFKA_BOOTSTRAP", "127.0.0.1:9092", "Kafka bootstrap servers (host:port[,host:port])"
    )
    redis_url: str = _env_field("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis URL")
    app_id: str = _env_field(
        "LS_APP_ID", "livesegments", "Faust app id: the consumer group and internal topic prefix"
    )
    key_prefix: str = _env_field("LS_KEY_PREFIX", "ls", "prefix of every Redis key")
    data_dir: str = _env_field(
        "LS_DATA_DIR",
        ".local/worker",
        "folder of the worker's local files (Faust's data directory; no state is kept there)",
    )
    events_topic: str = _env_field("LS_EVENTS_TOPIC", "segments.events", "input events topic")
    events_partitions: int = _env_field(
        "LS_EVENTS_PARTITIONS", 8, "partitions of the events topic when the worker creates it"
    )
    control_topic: str = _env_field("LS_CONTROL_TOPIC", "segments.control", "control commands")
    replies_topic: str = _env_field(
        "LS_REPLIES_TOPIC", "segments.control.replies", "one reply per control command"
    )
    membership_topic: str = _env_field(
        "LS_MEMBERSHIP_TOPIC", "segments.membership", "membership changes (entered/exited)"
    )
    dlq_topic: str = _env_field("LS_DLQ_TOPIC", "segments.events.dlq", "dead letters")
    topic_replication: int = _env_field(
        "LS_TOPIC_REPLICATION",
        1,
        "replication factor of the topics the worker creates (3 on a 3-broker cluster)",
    )
    topic_min_insync: int = _env_field(
        "LS_TOPIC_MIN_INSYNC",
        1,
        "min.insync.replicas of the topics the worker creates (2 with replication 3)",
    )
    session_timeout_s: float = _env_field(
        "LS_SESSION_TIMEOUT_S",
        30.0,
        "seconds before the group gives a silent worker's partitions to others",
    )
    fetch_max_wait_ms: int = _env_field(
        "LS_FETCH_MAX_WAIT_MS",
        100,
        "longest a consumer fetch waits on the broker for new data (faust fixes 1500)",
    )
    events_fetch: str = _env_field(
        "LS_EVENTS_FETCH",
        "loop",
        "where the events partitions are fetched: loop (a group-less consumer on the worker's "
        "event loop) or thread (the group consumer in faust's consumer thread, one hop a batch)",
    )
    fetch_min_bytes: int = _env_field(
        "LS_FETCH_MIN_BYTES",
        1,
        "bytes a consumer fetch waits for on the broker, up to LS_FETCH_MAX_WAIT_MS (1: none)",
    )
    events_fetch_linger_ms: int = _env_field(
        "LS_EVENTS_FETCH_LINGER_MS",
        10,
        "while events come, how long each events fetch waits on the broker to gather more "
        "(0: none; idle, the fetch answers at the first record: engine/loop_fetcher.py)",
    )
    """10 ms: at 1,000 events/s each fetch is a cycle of requests (the fetch, the turn's Redis
    write, a produce request), each a loopback round trip that costs the worker, the broker and
    Redis CPU on the two shared cores. Alternated `latency_run` turns, two workers (session 15):
    worker CPU -18 % against 5 ms (780-823 against 938-970 µs per event, both workers), p99
    50.4/55.0/44.6/46.3 against 49.7/57.0/58.8/49.4 ms, p50 +1.5-4 ms (docs/performance.md)."""
    redis_turn_pipeline: bool = _env_field(
        "LS_REDIS_TURN_PIPELINE",
        True,
        "send the partitions' profile reads and commits of one event-loop turn in one write, "
        "pipelined on a connection held for them (1/0; state/turn.py)",
    )
    check_partitioner: bool = _env_field(
        "LS_CHECK_PARTITIONER",
        True,
        "dead-letter (wrong_partition) an event that would create a customer on another "
        "partition than Kafka's default partitioner (murmur2) gives its key (1/0; 0 only when "
        "every producer partitions the same other way by design)",
    )
    switch_interval_ms: float = _env_field(
        "LS_SWITCH_INTERVAL_MS",
        0.5,
        "the worker's GIL switch interval (ms; CPython's 5 ms makes each Redis round trip of the "
        "event loop wait for faust's consumer thread)",
    )
    event_loop: str = _env_field(
        "LS_EVENT_LOOP", "uvloop", "the worker's event loop: uvloop or asyncio"
    )
    web_port: int = _env_field("LS_WEB_PORT", 6066, "HTTP port of the worker (/metrics)")
    web_bind: str = _env_field(
        "LS_WEB_BIND",
        "127.0.0.1",
        "address the HTTP server listens on (0.0.0.0: every interface, e.g. in a container)",
    )
    batch_size: int = _env_field(
        "LS_BATCH_SIZE", 500, "most events of one partition per processing batch (per getmany)"
    )
    batch_within_s: float = _env_field(
        "LS_BATCH_WITHIN_S",
        0.01,
        "unused since the events are read with getmany, which returns what was fetched",
    )
    stage_report_s: float = _env_field(
        "LS_STAGE_REPORT_S",
        0.0,
        "log per-stage timings of the events path every N s (0: off; diagnosis only)",
    )
    producer_linger_ms: int = _env_field(
        "LS_PRODUCER_LINGER_MS",
        0,
        "how long the producer waits to fill a batch of membership changes and other records",
    )
    """0: the partitions whose commits replied in one Redis read hand their records to the
    producer in one loop turn, and its sender, woken after them, sends them in one request; a
    1 ms linger split them into ~1.7 produce requests per fetch cycle. Alternated `latency_run`
    turns, two workers, 10 ms fetch linger (session 15): ~55 against ~100 produce requests a
    second per worker, p99 44.5/62.6/44.6 against 59.1/49.2/52.6 ms (docs/performance.md)."""
    task_chunk: int = _env_field(
        "LS_TASK_CHUNK", 5000, "customers evaluated per committed chunk of a backfill"
    )
    profile_cache_size: int = _env_field(
        "LS_PROFILE_CACHE_SIZE",
        25_000,
        "profiles kept in memory per owned partition (committed state; saves a Redis read)",
    )
    """25,000 (~2.8 KiB of worker memory a profile of the bench: ~70 MiB a full partition): a
    partition of up to 25,000 customers is held in memory whole, as a Kafka Streams task keeps
    its state store local. A customer read from Redis costs a round trip before its batch can
    apply and ~40 µs of decode and first build; with 10,000 against the bench's 12,500 a
    partition, a fifth of them were, and two workers' backfill went 52-63k -> 77-90k customers/s
    when all fit (session 12, `docs/performance.md`). Lower it where memory is short."""
    profile_warmup_chunk: int = _env_field(
        "LS_PROFILE_WARMUP_CHUNK",
        200,
        "profiles read per step when a newly owned partition's profile cache is filled in the "
        "background, up to LS_PROFILE_CACHE_SIZE (0: no warm-up; the cache fills as events come)",
    )
    freeze_every: int = _env_field(
        "LS_FREEZE_EVERY",
        1_000,
        "profile writes between two freezes of the heap (each at the end of CPython's next young "
        "collection; streams/engine/collector.py)",
    )
    """Until session 16 each freeze ran a young collection of its own, which paused the event
    loop for what was written since the last one: at 1,000 events/s with two workers p50 9-15 ms
    at 1,000 writes, 1.5-4 ms at 250, at the same CPU per event; the p99 of alternated pairs did
    not follow (session 13, `tail2w`, docs/performance.md), so the default stays where the
    preload's full collections put it. Now a freeze rides on CPython's own young collection
    (~0.01 ms)."""
    expiry_poll_s: float = _env_field(
        "LS_EXPIRY_POLL_S", 0.2, "how often due time-window expiries are looked for"
    )
    request_retention_s: float = _env_field(
        "LS_REQUEST_RETENTION_S",
        7 * 86_400.0,
        "how long a request_id is remembered to drop a redelivered command",
    )
    job_retention_s: float = _env_field(
        "LS_JOB_RETENTION_S", 30 * 86_400.0, "how long finished jobs are kept for status queries"
    )
    suggestion_ttl_s: float = _env_field(
        "LS_SUGGESTION_TTL_S",
        7 * 86_400.0,
        "how long a suggested segment can be previewed and accepted after it was suggested",
    )
    max_active_segments: int = _env_field("LS_MAX_ACTIVE_SEGMENTS", 1000, "active segments at most")
    max_conditions: int = _env_field("LS_MAX_CONDITIONS", 100, "leaf conditions per segment")
    max_depth: int = _env_field("LS_MAX_DEPTH", 10, "nesting depth of all/any/not")
    history_max_events: int = _env_field(
        "LS_HISTORY_MAX_EVENTS", 1000, "events kept per customer (oldest dropped first)"
    )
    history_max_age_ms: int = _env_field(
        "LS_HISTORY_MAX_AGE_MS", 365 * _DAY_MS, "age after which an event is forgotten (ms)"
    )
    max_message_bytes: int = _env_field(
        "LS_MAX_MESSAGE_BYTES", 65_536, "larger input messages go to the dead-letter topic"
    )
    max_future_ms: int = _env_field(
        "LS_MAX_FUTURE_MS", 300_000, "events stamped further in the future are dead letters"
    )
    stall_threshold_s: float = _env_field(
        "LS_STALL_THRESHOLD_S",
        5.0,
        "seconds of retrying after which /health reports the partition or plane as degraded",
    )
    shutdown_timeout_s: float = _env_field(
        "LS_SHUTDOWN_TIMEOUT_S",
        10.0,
        "seconds a stopping worker (SIGTERM) gets to finish before it exits anyway",
    )
    api_token: str = _env_field(
        "LS_API_TOKEN",
        "",
        "bearer token of the HTTP API's mutating endpoints (unset: mutations are refused)",
        secret=True,
    )
    api_reads_require_token: bool = _env_field(
        "LS_API_READS_REQUIRE_TOKEN",
        True,
        "false: the HTTP API's reads (members, CSV, stats, estimates, exports, jobs) are open",
    )
    api_max_body_bytes: int = _env_field(
        "LS_API_MAX_BODY_BYTES", 1_048_576, "larger HTTP request bodies are refused with 413"
    )
    api_command_timeout_s: float = _env_field(
        "LS_API_COMMAND_TIMEOUT_S",
        60.0,
        "seconds the HTTP API waits for a control reply before answering 504",
    )
    trend_interval_s: float = _env_field(
        "LS_TREND_INTERVAL_S", 3600.0, "seconds between member-count snapshots (leader only)"
    )
    trend_retention_s: int = _env_field(
        "LS_TREND_RETENTION_S", 90 * 86_400, "seconds of member-count snapshots kept"
    )

    export_root: str = _env_field(
        "LS_EXPORT_ROOT",
        "exports",
        "files exports write only under this folder (relative: to the worker's directory)",
    )
    export_concurrency: int = _env_field(
        "LS_EXPORT_CONCURRENCY", 4, "export runs carried out at once (one at a time per export)"
    )
    webhook_timeout_s: float = _env_field(
        "LS_WEBHOOK_TIMEOUT_S", 10.0, "seconds a webhook request may take before it fails"
    )
    webhook_max_backoff_s: float = _env_field(
        "LS_WEBHOOK_MAX_BACKOFF_S", 30.0, "longest wait between two attempts of a webhook batch"
    )
    analysis_hold_file: str = _env_field(
        "LS_ANALYSIS_HOLD_FILE",
        "",
        "tests only: while this file exists a similar-customers analysis stays running in "
        "the analysis process (empty: off)",
    )

    def __post_init__(self) -> None:
        if not 1 <= self.topic_min_insync <= self.topic_replication:
            raise SettingsError(
                f"LS_TOPIC_MIN_INSYNC={self.topic_min_insync!r} must be between 1 and "
                f"LS_TOPIC_REPLICATION={self.topic_replication!r} (e.g. 2 of 3)"
            )
        for name in (
            "api_max_body_bytes",
            "export_concurrency",
            "topic_replication",
            "fetch_min_bytes",
            "freeze_every",
        ):
            if getattr(self, name) < 1:
                env = next(f.metadata["env"] for f in fields(self) if f.name == name)
                raise SettingsError(f"{env}={getattr(self, name)!r} must be at least 1")
        if not 0 < self.switch_interval_ms <= 1000:
            raise SettingsError(
                f"LS_SWITCH_INTERVAL_MS={self.switch_interval_ms!r} must be more than 0 and at "
                "most 1000 (ms)"
            )
        if self.events_fetch_linger_ms < 0:
            raise SettingsError(
                f"LS_EVENTS_FETCH_LINGER_MS={self.events_fetch_linger_ms!r} must be 0 (none) or "
                "more (ms)"
            )
        if self.profile_warmup_chunk < 0:
            raise SettingsError(
                f"LS_PROFILE_WARMUP_CHUNK={self.profile_warmup_chunk!r} must be 0 (no warm-up) "
                "or more"
            )
        if self.event_loop not in EVENT_LOOPS:
            raise SettingsError(
                f"LS_EVENT_LOOP={self.event_loop!r} must be one of {', '.join(EVENT_LOOPS)}"
            )
        if self.events_fetch not in EVENTS_FETCHES:
            raise SettingsError(
                f"LS_EVENTS_FETCH={self.events_fetch!r} must be one of {', '.join(EVENTS_FETCHES)}"
            )
        for name in ("webhook_timeout_s", "webhook_max_backoff_s"):
            value = getattr(self, name)
            if not 0 < value < float("inf"):
                env = next(f.metadata["env"] for f in fields(self) if f.name == name)
                raise SettingsError(f"{env}={value!r} must be a positive number of seconds")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata["env"]
            if name not in env:
                continue
            raw = env[name]
            kind: type = type(f.default)
            try:
                values[f.name] = _parse_bool(raw) if kind is bool else kind(raw)
            except ValueError:
                raise SettingsError(
                    f"{name}={raw!r} is not a valid {kind.__name__} ({f.metadata['doc']})"
                ) from None
        values.update(overrides)
        return cls(**values)

    def describe(self) -> list[tuple[str, str, str]]:
        """(env name, value, doc) rows for printing; the Redis URL password is masked."""
        rows = []
        for f in fields(self):
            value = str(getattr(self, f.name))
            if f.metadata.get("secret") and value:
                value = "***"
            elif f.name == "redis_url" and "@" in value:
                scheme, _, rest = value.partition("://")
                value = f"{scheme}://***@{rest.split('@', 1)[1]}"
            rows.append((f.metadata["env"], value, f.metadata["doc"]))
        return rows
