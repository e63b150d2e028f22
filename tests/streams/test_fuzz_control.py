"""Fuzzing the control topic of a running worker: random bytes and mutated commands, mixed with
valid ones. Every command with a request id gets exactly one reply, nothing makes the control
agent retry, and valid commands still work afterwards."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from typing import Any

import msgpack
import pytest

from .fixtures import Harness, segment

pytestmark = pytest.mark.integration

SEED = 20261129
INPUTS = 800
"""How many control messages the test sends (valid ones included)."""

_ODD: list[Any] = [
    None, True, False, 0, -1, 10**30, -(10**19), 2**64, 1.5, float("inf"), float("nan"), "",
    " ", "7d\n", "x" * 5000, "²", "\u202e", "\ud800", "é" * 300, "a\x00b", [], {}, [[[[[]]]]],
    {"": None}, "0 0 31 2 *", "E" * 300, "Europe/Berlin\n", "2030-01-01T00:00:00Z", "-1d",
]  # fmt: skip


def _templates(rng: random.Random, n: int) -> list[dict[str, Any]]:
    sid = f"fz-{n % 12}"
    where = rng.choice(
        [
            {"attr": "tier", "op": "eq", "value": "gold"},
            {"event": "buy", "agg": "count", "within": "7d", "op": "gte", "value": 1},
            {"attr": "age", "op": "gt", "value": 30},
            {"in_segment": f"fz-{(n + 1) % 12}"},
        ]
    )
    return [
        {"command": "create", "segment": segment(sid, where), "activate": rng.random() < 0.3},
        {"command": "update", "segment": segment(sid, where)},
        {"command": "delete", "segment_id": sid},
        {"command": "activate", "segment_id": sid},
        {"command": "deactivate", "segment_id": sid},
        {"command": "refresh", "segment_ids": [sid]},
        {"command": "rename", "segment_id": sid, "name": f"Fuzz {n}"},
        {"command": "duplicate", "segment_id": sid, "new_id": f"fz-copy-{n}"},
        {"command": "set_type", "segment_id": sid, "type": "static"},
        {"command": "schedule", "segment_id": sid, "action": "deactivate", "at": "2099-01-01"},
        {"command": "unschedule", "schedule_id": uuid.uuid4().hex},
        {"command": "schedule_refresh", "all": True, "cron": "0 6 * * *", "timezone": "UTC"},
        {"command": "cancel", "job_id": uuid.uuid4().hex},
        {"command": "forget", "customer_id": f"fz-c{n % 20}"},
        {"command": "export", "export_id": "fz-none"},
        {"command": "_task_done", "job_id": uuid.uuid4().hex, "partition": 0, "stats": {}},
        {"command": "_export_done", "job_id": uuid.uuid4().hex, "segment_id": sid},
    ]


def _mutate(rng: random.Random, value: Any, depth: int = 0) -> Any:
    """One random change somewhere in `value`: a field dropped, retyped or oddly valued."""
    if isinstance(value, dict) and value and depth < 6:
        key = rng.choice(list(value))
        roll = rng.random()
        if roll < 0.2:
            return {k: v for k, v in value.items() if k != key}
        if roll < 0.3:
            return {**value, rng.choice(["extra", "", "command", "é"]): rng.choice(_ODD)}
        return {**value, key: _mutate(rng, value[key], depth + 1)}
    if isinstance(value, list) and value and depth < 6:
        i = rng.randrange(len(value))
        return [*value[:i], _mutate(rng, value[i], depth + 1), *value[i + 1 :]]
    if isinstance(value, str) and value and rng.random() < 0.3:
        return value + rng.choice(["\n", " ", "\x00", "é", "$"])
    return rng.choice(_ODD)


def _deep(levels: int) -> dict[str, Any]:
    where: dict[str, Any] = {"attr": "a", "op": "exists"}
    for _ in range(levels):
        where = {"not": where}
    return where


def _encode(rng: random.Random, command: dict[str, Any]) -> bytes:
    """JSON or msgpack at random; random bytes when neither can carry the command."""
    encoders = [
        lambda: json.dumps(command).encode("utf-8", "surrogatepass"),
        lambda: msgpack.packb(command, unicode_errors="surrogatepass"),
    ]
    rng.shuffle(encoders)
    for encoder in encoders:
        try:
            return bytes(encoder())
        except (ValueError, TypeError, OverflowError):
            continue
    return rng.randbytes(50)


def _inputs(rng: random.Random) -> tuple[list[bytes], list[str]]:
    """The messages to send, and the request ids that must each get one reply."""
    messages: list[bytes] = []
    expected: list[str] = []
    for n in range(INPUTS):
        roll = rng.random()
        request_id = f"fz-{n}-{uuid.uuid4().hex[:8]}"
        if roll < 0.1:  # random bytes, maybe looking like JSON or msgpack
            prefix = rng.choice([b"", b"{", b"\x81", b"\xde\xff\xff", b"["])
            messages.append(prefix + rng.randbytes(rng.randrange(0, 200)))
            continue
        command = rng.choice(_templates(rng, n))
        if roll < 0.35:  # valid
            pass
        elif roll < 0.9:  # mutated, one to three times
            for _ in range(rng.randrange(1, 4)):
                command = _mutate(rng, command)
        else:  # deep nesting in a definition
            command = {
                "command": "create",
                "segment": segment(f"fz-deep-{n}", _deep(rng.randrange(5, 400))),
            }
        if not isinstance(command, dict):
            command = {"value": command}
        if command.get("command") in ("_task_done", "_export_done"):
            messages.append(_encode(rng, command))  # reports: no reply expected
            continue
        command["request_id"] = request_id
        value = _encode(rng, command)
        messages.append(value)
        if request_id.encode() in value:  # not replaced by random bytes
            expected.append(request_id)
    return messages, expected


def test_every_fuzzed_command_is_answered_once_and_valid_commands_still_work(
    harness: Harness,
) -> None:
    h = harness
    rng = random.Random(SEED)
    for c in range(20):
        h.client.send_event(f"fz-c{c}", "profile", {"tier": "gold", "age": 20 + c})
    messages, expected = _inputs(rng)
    started = time.monotonic()
    for value in messages:
        h.client.producer.send(h.settings.control_topic, value=value)
    h.client.flush()
    replies: Counter[str] = Counter()
    wanted = set(expected)
    deadline = time.monotonic() + 120
    while not wanted <= set(replies) and time.monotonic() < deadline:
        replies = Counter(
            str(msgpack.unpackb(m.value, raw=False).get("request_id"))
            for m in h.client.read_all(h.settings.replies_topic, idle=1.0)
        )
    elapsed = time.monotonic() - started
    missing = sorted(wanted - set(replies))
    assert not missing, f"{len(missing)} commands got no reply, e.g. {missing[:5]}"
    twice = [r for r in wanted if replies[r] != 1]
    assert not twice, f"answered more than once: {twice[:5]}"
    print(f"fuzz: {len(messages)} control messages, {len(expected)} with a request id, "
          f"all answered once in {elapsed:.1f}s")  # fmt: skip
    # no retry loop: the control agent never failed a batch
    log = h.worker.log_path.read_text(errors="replace")
    assert "control batch at" not in log, "the control agent retried a batch"
    # and valid commands still work
    after = segment("fz-after", {"attr": "tier", "op": "eq", "value": "silver"})
    h.ok({"command": "create", "segment": after, "activate": True}, timeout=90)
    h.client.send_event("fz-late", "profile", {"tier": "silver"})
    h.client.flush()
    h.wait_members("fz-after", {"fz-late"}, timeout=60)
