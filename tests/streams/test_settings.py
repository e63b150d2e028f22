"""Settings from the environment: types, booleans, errors, masking."""

from __future__ import annotations

from typing import Any, cast

import pytest
from redis.asyncio import Redis

from streams.engine import PartitionRuntime
from streams.settings import Settings, SettingsError


def test_values_are_read_with_their_types() -> None:
    settings = Settings.from_env(
        {"LS_EVENTS_PARTITIONS": "12", "LS_EXPIRY_POLL_S": "0.5", "LS_EVENTS_TOPIC": "ev"}
    )
    assert (settings.events_partitions, settings.expiry_poll_s) == (12, 0.5)
    assert settings.events_topic == "ev"


@pytest.mark.parametrize(
    ("raw", "value"), [("1", True), ("true", True), ("0", False), ("no", False), ("", False)]
)
def test_booleans_are_parsed_not_cast(raw: str, value: bool) -> None:
    assert Settings.from_env({"LS_API_READS_REQUIRE_TOKEN": raw}).api_reads_require_token is value


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"LS_BATCH_SIZE='many' is not a valid int"):
        Settings.from_env({"LS_BATCH_SIZE": "many"})


def test_secrets_are_masked_when_printed() -> None:
    settings = Settings.from_env(
        {"LS_API_TOKEN": "s3cret", "REDIS_URL": "redis://:pw@redis.example:6379/0"}
    )
    printed = {env: value for env, value, _ in settings.describe()}
    assert printed["LS_API_TOKEN"] == "***"
    assert printed["REDIS_URL"] == "redis://***@redis.example:6379/0"
    assert "s3cret" not in str(printed) and "pw" not in printed["REDIS_URL"]


def test_topic_replication_defaults_to_a_single_broker() -> None:
    settings = Settings.from_env({})
    assert (settings.topic_replication, settings.topic_min_insync) == (1, 1)
    cluster = Settings.from_env({"LS_TOPIC_REPLICATION": "3", "LS_TOPIC_MIN_INSYNC": "2"})
    assert (cluster.topic_replication, cluster.topic_min_insync) == (3, 2)


@pytest.mark.parametrize(
    ("replication", "min_insync"), [("1", "2"), ("3", "4"), ("3", "0"), ("0", "0")]
)
def test_min_insync_above_the_replication_is_refused(replication: str, min_insync: str) -> None:
    with pytest.raises(SettingsError, match=r"LS_TOPIC_MIN_INSYNC=.* must be between 1 and"):
        Settings.from_env({"LS_TOPIC_REPLICATION": replication, "LS_TOPIC_MIN_INSYNC": min_insync})


def test_interpreter_settings_default_and_parse() -> None:
    settings = Settings.from_env({})
    assert (settings.switch_interval_ms, settings.event_loop) == (0.5, "uvloop")
    tuned = Settings.from_env({"LS_SWITCH_INTERVAL_MS": "5", "LS_EVENT_LOOP": "asyncio"})
    assert (tuned.switch_interval_ms, tuned.event_loop) == (5.0, "asyncio")


@pytest.mark.parametrize("raw", ["0", "-1", "1000.5", "inf", "nan"])
def test_a_switch_interval_out_of_range_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"LS_SWITCH_INTERVAL_MS=.* must be more than 0"):
        Settings.from_env({"LS_SWITCH_INTERVAL_MS": raw})


def test_an_unknown_event_loop_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"LS_EVENT_LOOP=.tokio. must be one of asyncio, uv"):
        Settings.from_env({"LS_EVENT_LOOP": "tokio"})


def test_the_events_are_fetched_on_the_loop_unless_the_thread_is_named() -> None:
    assert Settings.from_env({}).events_fetch == "loop"
    assert Settings.from_env({"LS_EVENTS_FETCH": "thread"}).events_fetch == "thread"
    with pytest.raises(SettingsError, match=r"LS_EVENTS_FETCH=.group. must be one of loop, thr"):
        Settings.from_env({"LS_EVENTS_FETCH": "group"})


def test_fetch_min_bytes_is_at_least_one() -> None:
    assert Settings.from_env({}).fetch_min_bytes == 1
    assert Settings.from_env({"LS_FETCH_MIN_BYTES": "4096"}).fetch_min_bytes == 4096
    with pytest.raises(SettingsError, match=r"LS_FETCH_MIN_BYTES=0 must be at least 1"):
        Settings.from_env({"LS_FETCH_MIN_BYTES": "0"})


def test_the_events_fetch_linger_is_zero_or_more() -> None:
    assert Settings.from_env({}).events_fetch_linger_ms == 10
    assert Settings.from_env({"LS_EVENTS_FETCH_LINGER_MS": "0"}).events_fetch_linger_ms == 0
    with pytest.raises(SettingsError, match=r"LS_EVENTS_FETCH_LINGER_MS=-1 must be 0"):
        Settings.from_env({"LS_EVENTS_FETCH_LINGER_MS": "-1"})


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ("LS_REDIS_TURN_PIPELINE", "redis_turn_pipeline"),
        ("LS_CHECK_PARTITIONER", "check_partitioner"),
    ],
)
def test_a_switch_that_is_on_unless_turned_off(env: str, name: str) -> None:
    assert getattr(Settings.from_env({}), name) is True
    assert getattr(Settings.from_env({env: "0"}), name) is False
    with pytest.raises(SettingsError, match=rf"{env}='sometimes'"):
        Settings.from_env({env: "sometimes"})


def test_the_freeze_cadence_is_at_least_one_write_and_reaches_the_runtime() -> None:
    settings = Settings.from_env({"LS_FREEZE_EVERY": "250"})
    runtime = PartitionRuntime(settings, Redis(), cast(Any, None))  # never connected
    assert runtime.freezer.every == 250
    with pytest.raises(SettingsError, match=r"LS_FREEZE_EVERY=0 must be at least 1"):
        Settings.from_env({"LS_FREEZE_EVERY": "0"})
