"""Safe defaults of a worker started with no extra settings: personal data behind the token,
the HTTP server on loopback only, bounded bodies, no exception text in a 500, exports that
stay inside their root and off the project's topics, and one slow export not blocking others.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from state._codec import unpack

from ..fixtures import unique_env
from .fixtures import TOKEN, ApiHarness, definition

pytestmark = pytest.mark.integration

MAX_BODY = 65_536
SECRET = "s3cret-signing-key"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("export-root")


@pytest.fixture(scope="module")
def world(
    kafka_bootstrap: str, redis_url: str, root: Path, request: pytest.FixtureRequest
) -> Iterator[ApiHarness]:
    # LS_API_READS_REQUIRE_TOKEN and LS_WEB_BIND are left at their defaults on purpose
    env = unique_env(
        kafka_bootstrap,
        redis_url,
        LS_API_TOKEN=TOKEN,
        LS_API_MAX_BODY_BYTES=str(MAX_BODY),
        LS_EXPORT_ROOT=str(root),
        LS_WEBHOOK_TIMEOUT_S="120",
    )
    h = ApiHarness(env, "safe_defaults")
    h.start()
    h.api.wait_ready()
    body = {"segment": definition("safe", {"attr": "tier", "op": "exists"}), "activate": True}
    h.api.ok("POST", "/segments", body, status=201)
    h.populate("safe", {"sd1": {"tier": "gold"}, "sd2": {"tier": "silver"}})
    yield h
    h.close()


READS = [
    "/segments",
    "/segments/safe",
    "/segments/safe/members",
    "/segments/safe/members.csv",
    "/segments/safe/trend",
    "/segments/safe/exports",
    "/segments/safe/schedules",
    "/attributes/tier/stats",
    "/jobs",
    "/exports",
    "/refresh-schedules",
]


def test_reads_of_personal_data_need_the_token_by_default(world: ApiHarness) -> None:
    api = world.api
    for path in READS:
        status, raw, _ = api.raw("GET", path, token=None)
        assert status == 401, (path, raw)
        assert json.loads(raw)["error"]["code"] == "missing_token"
        assert b"sd1" not in raw
        status, raw, _ = api.raw("GET", path, token="wrong")
        assert status == 401, (path, raw)
        assert api.raw("GET", path)[0] == 200, path
    estimate = {"segment": definition("e", {"attr": "tier", "op": "exists"})}
    status, body = api.call("POST", "/segments/estimate", estimate, token=None)
    assert (status, body["error"]["code"]) == (401, "missing_token")
    assert api.ok("POST", "/segments/estimate", estimate)["estimate"] == 2
    assert api.call("GET", "/openapi.json", token=None)[0] == 200  # no personal data in it


def _listeners(port: int) -> set[str]:
    """Local addresses (hex, as the kernel prints them) of the sockets listening on `port`."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                address, hex_port = fields[1].rsplit(":", 1)
                if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                    found.add(address)
    return found


def _own_addresses() -> set[str]:
    """This machine's non-loopback IPv4 addresses (those a UDP socket would leave from)."""
    found = set()
    for target in ("10.255.255.255", "192.0.2.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect((target, 1))
            except OSError:
                continue
            address = probe.getsockname()[0]
            if not address.startswith("127."):
                found.add(address)
    return found


def test_the_http_server_listens_on_loopback_only(world: ApiHarness) -> None:
    port = world.settings.web_port
    assert world.settings.web_bind == "127.0.0.1"
    assert _listeners(port) == {"0100007F"}  # 127.0.0.1; faust's default was 0.0.0.0
    for address in _own_addresses():
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((address, port), timeout=5).close()


def _post(world: ApiHarness, path: str, body: bytes | Iterator[bytes]) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", world.settings.web_port, timeout=60)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        chunked = not isinstance(body, bytes)
        connection.request("POST", path, body=body, headers=headers, encode_chunked=chunked)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_oversized_bodies_get_413(world: ApiHarness) -> None:
    filler = {"segment": definition("big", {"attr": "tier", "op": "exists"}), "pad": "x" * MAX_BODY}
    big = json.dumps(filler).encode()
    status, body = _post(world, "/segments/estimate", big)
    assert (status, body["error"]["code"]) == (413, "body_too_large")
    assert str(MAX_BODY) in body["error"]["message"]
    assert "LS_API_MAX_BODY_BYTES" in body["error"]["message"]
    # no Content-Length: a chunked body is cut off once it passes the limit
    status, body = _post(world, "/segments/estimate", iter([big[:40_000], big[40_000:]]))
    assert (status, body["error"]["code"]) == (413, "body_too_large")
    small = json.dumps({"segment": definition("s", {"attr": "tier", "op": "exists"})}).encode()
    for body_or_chunks in (small, iter([small])):
        status, body = _post(world, "/segments/estimate", body_or_chunks)
        assert (status, body["estimate"]) == (200, 2)


def test_an_internal_error_answers_an_id_never_the_exception(world: ApiHarness) -> None:
    # a job record no reader can decode: the read raises an unexpected exception
    world.redis.hset(world.keys.registry.jobs, "broken-job", b"\xc1\xc1 not msgpack")
    try:
        status, raw, _ = world.api.raw("GET", "/jobs/broken-job")
    finally:
        world.redis.hdel(world.keys.registry.jobs, "broken-job")
    assert status == 500
    error = json.loads(raw)["error"]
    assert error["code"] == "internal"
    assert set(error) == {"code", "message", "error_id"}
    assert error["error_id"] in error["message"]
    assert "not msgpack" not in raw.decode() and "Error" not in raw.decode()
    deadline = time.monotonic() + 10
    while error["error_id"] not in world.worker.log_path.read_text(errors="replace"):
        assert time.monotonic() < deadline, "the error id is not in the worker's log"
        time.sleep(0.1)
    log = world.worker.log_path.read_text(errors="replace")
    assert "Traceback" in log[log.index(error["error_id"]) :]  # the details are logged


def test_export_definitions_stay_inside_the_root_and_off_own_topics(
    world: ApiHarness, root: Path
) -> None:
    api = world.api

    def refused(destination: dict[str, object]) -> dict[str, str]:
        export = {"id": "bad", "name": "Bad", "segments": ["safe"], "destination": destination}
        status, body = api.call("POST", "/exports", export)
        assert status == 400, body
        return dict(body["error"])

    for directory in ("/etc/cron.d", "../../outside", str(root) + "-sibling"):
        error = refused({"type": "files", "directory": directory})
        assert error["code"] == "outside_export_root"
        assert error["path"] == "export.destination.directory"
        assert repr(directory) in error["message"] and str(root) in error["message"]
    settings = world.settings
    for topic in (settings.events_topic, settings.membership_topic, settings.dlq_topic,
                  settings.control_topic, settings.replies_topic):  # fmt: skip
        error = refused({"type": "kafka", "topic": topic})
        assert (error["code"], error["path"]) == ("reserved_topic", "export.destination.topic")
    (root / "link").symlink_to("/tmp")
    error = refused({"type": "files", "directory": "link/x"})
    assert error["code"] == "symlink_in_export_root"
    # an update is checked too
    good = {"id": "inside", "name": "Inside", "segments": ["safe"],
            "destination": {"type": "files", "directory": "crm"}}  # fmt: skip
    api.ok("POST", "/exports", good, status=201)
    moved = {**good, "destination": {"type": "files", "directory": "/var/tmp"}}
    status, body = api.call("PUT", "/exports/inside", moved)
    assert (status, body["error"]["code"]) == (400, "outside_export_root")
    api.ok("DELETE", "/exports/inside")


def test_credentials_in_a_webhook_url_are_masked_and_kept(world: ApiHarness) -> None:
    api = world.api
    url = "https://bob:pw-9876@crm.example.com/h?token=tok-5432"
    hook = {"id": "masked", "name": "Masked", "segments": ["safe"],
            "destination": {"type": "webhook", "url": url, "secret": SECRET}}  # fmt: skip
    created = api.ok("POST", "/exports", hook, status=201)["export"]
    shown = api.ok("GET", "/exports/masked")
    for view in (created, shown, api.ok("GET", "/exports")):
        assert "pw-9876" not in str(view) and "tok-5432" not in str(view)
    assert shown["destination"]["url"] == "https://***@crm.example.com/h?token=***"
    # a PUT that sends the masked URL back keeps the real one
    edited = {k: shown[k] for k in ("id", "name", "segments", "destination")}
    edited["name"] = "Masked 2"
    api.ok("PUT", "/exports/masked", edited)
    stored = unpack(world.redis.hget(world.keys.registry.exports, "masked"))
    assert stored["definition"]["destination"]["url"] == url
    api.ok("DELETE", "/exports/masked")


def test_a_destination_that_never_answers_does_not_hold_up_other_exports(
    world: ApiHarness, root: Path
) -> None:
    api = world.api
    # accepts connections (the kernel's backlog) and never answers a request
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        slow = {"id": "slow", "name": "Slow", "segments": ["safe"],
                "destination": {"type": "webhook", "url": url, "secret": SECRET,
                                "retries": 0}}  # fmt: skip
        fast = {"id": "fast", "name": "Fast", "segments": ["safe"],
                "destination": {"type": "files", "directory": "fast"}}  # fmt: skip
        api.ok("POST", "/exports", slow, status=201)
        api.ok("POST", "/exports", fast, status=201)
        stuck = api.ok("POST", "/exports/slow/run", status=202)["job"]["job_id"]
        deadline = time.monotonic() + 60
        while api.ok("GET", f"/jobs/{stuck}")["tasks"][0]["status"] != "Processing":
            assert time.monotonic() < deadline, "the slow export never started"
            time.sleep(0.1)
        done = api.ok("POST", "/exports/fast/run?wait=1", status=202)
        assert done["job"]["status"] == "Successful"
        assert done["tasks"]["safe"]["count"] == 2
        assert len(list((root / "fast").rglob("*.csv"))) == 1
        # the webhook is still waiting for its answer (LS_WEBHOOK_TIMEOUT_S=120)
        assert api.ok("GET", f"/jobs/{stuck}")["status"] == "Processing"
    finally:
        silent.close()
