"""The latency benchmark's change reader: the librdkafka settings it reads with, and the A/B
arms' settings of the bench's own clients (`latency_run --arm LABEL:reader.K=V,paced.K=V`)."""

from __future__ import annotations

import multiprocessing
from typing import Any, ClassVar

import pytest

from benchmarks import latency
from benchmarks.latency_run import _arm, _clients


class _Consumer:
    """A consumer that finds nothing; keeps the config it was built with."""

    built: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, config: dict[str, Any]) -> None:
        _Consumer.built.append(config)

    def get_watermark_offsets(self, tp: Any) -> tuple[int, int]:
        return 0, 0

    def assign(self, tps: Any) -> None:
        pass

    def poll(self, timeout: float) -> None:
        return None

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []

    def close(self) -> None:
        pass


def _read_config(monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> dict[str, Any]:
    """The config `_read` builds its consumer with (nothing is waited for: it returns at once)."""
    _Consumer.built.clear()
    monkeypatch.setattr(latency, "Consumer", _Consumer)
    parent, child = multiprocessing.Pipe()
    parent.send((set(), 0.0))
    assert latency._read(["127.0.0.1:1"], "changes", 8, child, **kwargs) == ({}, {})
    assert parent.recv() == "ready"
    (config,) = _Consumer.built
    return config


def test_the_reader_waits_on_the_broker_for_the_first_change_not_for_a_timer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """min bytes 1: the broker answers a waiting fetch as soon as a change is appended, so the
    arrival stamps do not depend on the wait; a long wait only spares the empty fetches a
    short one returns every few ms on a quiet topic (~0.8 ms of broker CPU each here)."""
    config = _read_config(monkeypatch)
    assert config["fetch.min.bytes"] == 1
    assert config["fetch.wait.max.ms"] >= 100
    assert config["group.id"].startswith("latency-reader-")


def test_an_arms_reader_settings_replace_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _read_config(monkeypatch, config={**latency.READER_CONFIG, "fetch.wait.max.ms": "5"})
    assert config["fetch.wait.max.ms"] == "5"
    assert config["fetch.min.bytes"] == 1


def test_bench_client_keys_of_an_arm_do_not_reach_the_worker() -> None:
    label, _root, env = _arm("r5:reader.fetch.wait.max.ms=5,paced.linger.ms=5,LS_FETCH_MIN_BYTES=9")
    _count, worker, clients = _clients(env)
    assert label == "r5"
    assert worker == {"LS_FETCH_MIN_BYTES": "9"}
    assert clients == {"reader.": {"fetch.wait.max.ms": "5"}, "paced.": {"linger.ms": "5"}}
