"""Segment lifecycle end to end on the real broker and Redis: one worker for the module."""

from __future__ import annotations

import time
import urllib.request
import uuid

import msgpack

from streams.client import MembershipFold

from .fixtures import Harness, segment


def _fold_matches_redis(h: Harness, segment_id: str) -> None:
    fold = h.client.wait_for(
        lambda f: f.members.get(segment_id, set()) == h.members(segment_id),
        what=f"membership topic fold of {segment_id!r} equal to Redis",
    )
    assert fold.members.get(segment_id, set()) == h.members(segment_id)


def test_events_move_customers_in_and_out(harness: Harness) -> None:
    h = harness
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("gold", {"attr": "tier", "op": "eq", "value": "gold"}),
        }
    )
    for i in range(20):
        h.client.send_event(f"g{i}", "profile", {"tier": "gold" if i % 3 == 0 else "silver"})
    h.client.flush()
    expected = {f"g{i}" for i in range(20) if i % 3 == 0}
    h.wait_members("gold", expected)
    h.client.send_event("g0", "profile", {"tier": None})  # null removes the attribute
    h.client.send_event("g1", "profile", {"tier": "gold"}, as_json=True)
    h.client.flush()
    h.wait_members("gold", expected - {"g0"} | {"g1"})
    _fold_matches_redis(h, "gold")
    causes = {(c["customer_id"], c["change"], c["cause"]) for c in h.client.fold.changes}
    assert ("g0", "exited", "event") in causes
    assert ("g1", "entered", "event") in causes


def test_activate_backfills_existing_customers_and_deactivate_empties(harness: Harness) -> None:
    h = harness
    for i in range(30):
        h.client.send_event(f"a{i}", "profile", {"age": 20 + i})
    h.client.flush()
    h.ok(
        {
            "command": "create",
            "activate": False,
            "segment": segment("over40", {"attr": "age", "op": "gt", "value": 40}),
        }
    )
    assert h.members("over40") == set()  # a draft has no members
    # wait until the profiles are applied (a segment on the same attribute sees them)
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("aged", {"attr": "age", "op": "exists"}),
        }
    )
    h.wait_members("aged", {f"a{i}" for i in range(30)} | set())
    result = h.ok({"command": "activate", "segment_id": "over40"})
    assert result["members"] == {"over40": 9}
    assert result["job"]["entered"] == 9
    assert h.members("over40") == {f"a{i}" for i in range(21, 30)}
    result = h.ok({"command": "deactivate", "segment_id": "over40"})
    assert result["job"]["exited"] == 9
    assert h.members("over40") == set()
    _fold_matches_redis(h, "over40")
    exits = [
        c for c in h.client.fold.changes if c["segment_id"] == "over40" and c["change"] == "exited"
    ]
    assert {c["cause"] for c in exits} == {"deactivate"}
    # an inactive segment ignores events
    h.client.send_event("a99", "profile", {"age": 99})
    h.client.flush()
    h.wait_members("aged", {f"a{i}" for i in range(30)} | {"a99"})
    assert h.members("over40") == set()


def test_update_re_evaluates_and_delete_exits_everyone(harness: Harness) -> None:
    h = harness
    for i in range(10):
        h.client.send_event(f"u{i}", "profile", {"score": i})
    h.client.flush()
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("scored", {"attr": "score", "op": "gte", "value": 0}),
        }
    )
    h.wait_members("scored", {f"u{i}" for i in range(10)} | _others(h, "scored"))
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("high", {"attr": "score", "op": "gte", "value": 8}),
        }
    )
    assert {m for m in h.members("high") if m.startswith("u")} == {"u8", "u9"}
    result = h.ok(
        {
            "command": "update",
            "segment": segment("high", {"attr": "score", "op": "gte", "value": 5}),
        }
    )
    assert result["segment"]["version"] == 2
    assert {m for m in h.members("high") if m.startswith("u")} == {"u5", "u6", "u7", "u8", "u9"}
    h.client.wait_for(
        lambda fold: any(
            (c["segment_id"], c["customer_id"], c["change"], c["cause"])
            == ("high", "u5", "entered", "update")
            for c in fold.changes
        ),
        what="u5 entering 'high' by the update on the membership topic",
    )
    result = h.ok({"command": "delete", "segment_id": "high"})
    assert result["deleted"] is True
    assert h.members("high") == set()
    assert h.command({"command": "activate", "segment_id": "high"})["error"]["code"] == "not_found"


def _others(h: Harness, segment_id: str) -> set[str]:
    return {m for m in h.members(segment_id) if not m.startswith("u")}


def test_static_segment_changes_only_on_refresh(harness: Harness) -> None:
    h = harness
    h.client.send_event("s1", "profile", {"plan": "pro"})
    h.client.flush()
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("plans", {"attr": "plan", "op": "exists"}),
        }
    )
    h.wait_members("plans", {"s1"})
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment(
                "pro-static", {"attr": "plan", "op": "eq", "value": "pro"}, type="static"
            ),
        }
    )
    assert h.members("pro-static") == {"s1"}
    h.client.send_event("s2", "profile", {"plan": "pro"})
    h.client.send_event("s1", "profile", {"plan": "free"})
    h.client.flush()
    h.wait_members("plans", {"s1", "s2"})
    assert h.members("pro-static") == {"s1"}  # static: no incremental change
    result = h.ok({"command": "refresh", "segment_ids": ["pro-static"]})
    assert result["job"]["entered"] == 1 and result["job"]["exited"] == 1
    assert h.members("pro-static") == {"s2"}

    def static_changes(fold: MembershipFold) -> set[tuple[str, str, str]]:
        return {
            (c["customer_id"], c["change"], c["cause"])
            for c in fold.changes
            if c["segment_id"] == "pro-static"
        }

    expected = {
        ("s1", "entered", "activate"),
        ("s1", "exited", "refresh"),
        ("s2", "entered", "refresh"),
    }
    fold = h.client.wait_for(
        lambda fold: expected <= static_changes(fold), what="the refresh's changes of 'pro-static'"
    )
    assert static_changes(fold) == expected


def test_segments_of_segments_follow_their_inputs(harness: Harness) -> None:
    h = harness
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("de", {"attr": "country", "op": "eq", "value": "DE"}),
        }
    )
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment(
                "big-spender",
                {"event": "purchase", "agg": "sum", "prop": "amount", "op": "gte", "value": 100},
            ),
        }
    )
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": {
                "id": "vip-de",
                "name": "VIP DE",
                "rules": [
                    {"where": {"in_segment": "de"}},
                    {"op": "intersect", "where": {"in_segment": "big-spender"}},
                ],
            },
        }
    )
    h.client.send_event("v1", "profile", {"country": "DE"})
    h.client.send_event("v2", "profile", {"country": "FR"})
    for customer in ("v1", "v2"):
        h.client.send_event(customer, "purchase", {"amount": 60})
        h.client.send_event(customer, "purchase", {"amount": 50})
    h.client.flush()
    h.wait_members("vip-de", {"v1"})
    h.client.send_event("v1", "profile", {"country": "AT"})
    h.client.flush()
    h.wait_members("vip-de", set())
    assert h.command({"command": "delete", "segment_id": "de"})["error"]["code"] == "in_use"
    # a cycle is refused with the path of the offending condition
    reply = h.command({"command": "update", "segment": segment("de", {"in_segment": "vip-de"})})
    assert reply["error"]["code"] == "cycle"
    assert reply["error"]["path"] == "segment.rules[0].where.in_segment"


def test_bad_commands_get_one_clear_reply_each(harness: Harness) -> None:
    h = harness
    reply = h.command(
        {
            "command": "create",
            "segment": segment("bad", {"attr": "tier", "op": "equals", "value": "gold"}),
        }
    )
    assert reply["ok"] is False
    assert reply["error"]["code"] == "unknown_op"
    assert reply["error"]["path"] == "segment.rules[0].where.op"
    assert "'eq'" in reply["error"]["message"]
    reply = h.command(
        {
            "command": "create",
            "segment": segment(
                "bad2", {"event": "x", "agg": "count", "within": "3 days", "op": "gt", "value": 1}
            ),
        }
    )
    assert reply["error"]["code"] == "bad_duration"
    reply = h.command({"command": "create", "segment": segment("bad3", {"in_segment": "nope"})})
    assert reply["error"]["code"] == "missing_segment"
    assert h.command({"command": "activat", "segment_id": "x"})["error"]["message"].startswith(
        "unknown command 'activat'; did you mean 'activate'?"
    )
    assert h.command({"command": "deactivate"})["error"]["code"] == "missing_field"
    h.ok({"command": "create", "segment": segment("dup", {"attr": "a", "op": "exists"})})
    assert (
        h.command({"command": "create", "segment": segment("dup", {"attr": "a", "op": "exists"})})[
            "error"
        ]["code"]
        == "already_exists"
    )
    # not JSON/msgpack at all: still one reply (request_id unknown, so null)
    h.client.send_command({}, raw=b"\xc1 not a command")
    reply = h.client.wait_reply(None)
    assert reply["ok"] is False and reply["error"]["code"] == "undecodable"


def test_a_request_delivered_twice_is_applied_once_and_answered_once(harness: Harness) -> None:
    h = harness
    h.ok({"command": "create", "segment": segment("twice", {"attr": "a", "op": "exists"})})
    request_id = f"twice-{uuid.uuid4().hex}"
    update = {
        "command": "update",
        "request_id": request_id,
        "segment": segment("twice", {"attr": "b", "op": "exists"}),
    }
    h.client.send_command(dict(update))
    h.client.send_command(dict(update))  # the same request again: applied once, answered once
    # the same request id with a different command: refused, and not applied
    h.client.send_command({"command": "delete", "request_id": request_id, "segment_id": "twice"})
    replies = [r for r in h.replies_through(h.barrier()) if r["request_id"] == request_id]
    assert len(replies) == 2, replies
    assert replies[0]["ok"] and replies[0]["result"]["segment"]["version"] == 2, replies[0]
    assert replies[1]["error"]["code"] == "duplicate_request_id", replies[1]
    stored = msgpack.unpackb(h.redis.hget(h.keys.registry.segments, "twice"), raw=False)
    assert stored["version"] == 2  # one update applied; the delete was not


def _metric(h: Harness, name: str, *labels: str) -> float:
    """The sum of the samples of counter `name` on /metrics that carry every one of `labels`."""
    url = f"http://127.0.0.1:{h.settings.web_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and all(label in line for label in labels)
    )


def test_metrics_endpoint_counts_work(harness: Harness) -> None:
    h = harness
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("metered", {"attr": "metered", "op": "exists"}),
        }
    )
    processed = ("livesegments_events_processed_total",)
    entered = ("livesegments_membership_changes_total", 'change="entered"', 'cause="event"')
    h.ok({"command": "refresh", "all": True})  # whatever was sent before is applied
    before = (_metric(h, *processed), _metric(h, *entered))
    for n in range(5):
        h.client.send_event(f"metrics-{n}", "profile", {"metered": n})
    h.client.flush()
    h.wait_members("metered", {f"metrics-{n}" for n in range(5)})
    h.ok({"command": "refresh", "all": True})  # runs after the events in every partition
    after = (_metric(h, *processed), _metric(h, *entered))
    assert (after[0] - before[0], after[1] - before[1]) == (5, 5)


def test_the_registry_forgets_old_requests_and_jobs(kafka_bootstrap: str, redis_url: str) -> None:
    from .fixtures import unique_env

    h = Harness(
        unique_env(kafka_bootstrap, redis_url, LS_REQUEST_RETENTION_S="1", LS_JOB_RETENTION_S="1"),
        "retention",
    )
    try:
        h.start()
        h.ok(
            {
                "command": "create",
                "activate": True,
                "request_id": "old-1",
                "segment": segment("kept", {"attr": "a", "op": "exists"}),
            }
        )
        keys = h.keys.registry
        assert h.redis.hexists(keys.requests, "old-1") and h.redis.hlen(keys.jobs) == 1
        recorded = h.redis.zscore(keys.requests_by_time, "old-1")
        assert recorded is not None
        while time.time() * 1000 <= recorded + 1000:  # until "old-1" is past its retention
            time.sleep(0.05)
        h.ok({"command": "deactivate", "segment_id": "kept"})  # this command trims the rest
        assert not h.redis.hexists(keys.requests, "old-1")
        assert h.redis.zscore(keys.requests_by_time, "old-1") is None
        assert h.redis.hlen(keys.jobs) == 1  # only the deactivate job is left
        # past retention, the same request id is a new request
        assert h.command({"command": "activate", "segment_id": "kept", "request_id": "old-1"})["ok"]
    finally:
        h.close()


def test_a_deleted_id_can_be_created_again_with_new_rules(harness: Harness) -> None:
    h = harness
    h.client.send_event("r1", "profile", {"tier": "bronze"})
    h.client.send_event("r2", "profile", {"tier": "steel"})
    h.client.flush()
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("reborn", {"attr": "tier", "op": "eq", "value": "bronze"}),
        }
    )
    h.wait_members("reborn", {"r1"})
    h.ok({"command": "delete", "segment_id": "reborn"})
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("reborn", {"attr": "tier", "op": "eq", "value": "steel"}),
        }
    )
    assert h.members("reborn") == {"r2"}
    h.client.send_event("r3", "profile", {"tier": "steel"})
    h.client.flush()
    h.wait_members("reborn", {"r2", "r3"})


def test_health_reports_services_and_lag(harness: Harness) -> None:
    import json
    import urllib.request

    harness.client.send_event("health-1", "profile", {"x": 1})
    harness.client.flush()
    harness.ok({"command": "refresh", "all": True})  # runs after the event in every partition
    url = f"http://127.0.0.1:{harness.settings.web_port}/health"
    body = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert body["status"] == "ok" and body["redis"] and body["kafka"]
    assert body["events_partitions"] == [0, 1, 2, 3]
    assert set(body["lag"]) == {"0", "1", "2", "3"}
    assert all(lag == 0 for lag in body["lag"].values()), body
    assert set(body["warming"]) <= {0, 1, 2, 3}, body  # a report, not a fault


def test_the_outbox_empties_once_kafka_acknowledged(harness: Harness) -> None:
    h = harness
    h.ok(
        {
            "command": "create",
            "activate": True,
            "segment": segment("outbox-probe", {"attr": "probe", "op": "exists"}),
        }
    )
    for n in range(50):
        h.client.send_event(f"o{n}", "profile", {"probe": n})
    h.client.flush()
    h.wait_members("outbox-probe", {f"o{n}" for n in range(50)})
    keys = [h.keys.partition(p).outbox for p in range(h.settings.events_partitions)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(h.redis.llen(k) for k in keys):
        time.sleep(0.1)  # trimmed by the next commit, or by the idle trim within ~0.2 s
    assert [h.redis.llen(k) for k in keys] == [0] * len(keys)
