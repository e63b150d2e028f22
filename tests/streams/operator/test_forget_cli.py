"""Erasure over HTTP (`POST /customers/{id}/forget`) and the CLI (`segments forget ID`)."""

from __future__ import annotations

import pytest

from ..web.fixtures import ApiHarness, definition
from .fixtures import Run

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(api_harness: ApiHarness) -> ApiHarness:
    h = api_harness
    everyone = definition("fgc-all", {"attr": "age", "op": "exists"})
    h.api.ok("POST", "/segments", {"segment": everyone, "activate": True}, status=201)
    h.populate("fgc-all", {"fgc-1": {"age": 30}, "fgc-2": {"age": 40}, "a/b c": {"age": 50}})
    return h


def test_forget_over_http_needs_the_token_and_erases(world: ApiHarness) -> None:
    status, body = world.api.call("POST", "/customers/fgc-1/forget", token=None)
    assert status == 401 and body["error"]["code"] == "missing_token"
    assert "fgc-1" in world.members("fgc-all")
    result = world.api.ok("POST", "/customers/fgc-1/forget")
    assert result["customer_id"] == "fgc-1" and result["erased"] is True
    assert result["exited_segments"] == ["fgc-all"] and result["job"]["exited"] == 1
    assert world.members("fgc-all") == {"fgc-2", "a/b c"}
    again = world.api.ok("POST", "/customers/fgc-1/forget")
    assert again["erased"] is False and again["exited_segments"] == []


def test_segments_forget(run: Run, world: ApiHarness) -> None:
    code, out, err = run("forget", "a/b c")
    assert code == 0, err
    assert out.startswith("forgot customer 'a/b c'; exited fgc-all (job ")
    assert world.members("fgc-all") == {"fgc-2"}
    code, out, _ = run("forget", "nobody-here")
    assert code == 0 and out == "no data held for customer 'nobody-here'; nothing to forget\n"
