"""Token rules of the API, without a worker."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from streams.settings import Settings
from streams.web.auth import require_token
from streams.web.errors import ApiError, status_for


@dataclass
class _Request:
    headers: dict[str, str] = field(default_factory=dict)


def _code(settings: Settings, request: _Request, mutation: bool) -> str | None:
    try:
        require_token(settings, request, mutation)
    except ApiError as exc:
        assert exc.status == 401
        return exc.code
    return None


def test_mutations_refused_when_no_token_is_configured() -> None:
    settings = Settings(api_token="")
    code = _code(settings, _Request({"Authorization": "Bearer x"}), mutation=True)
    assert code == "token_not_configured"
    with pytest.raises(ApiError, match="set LS_API_TOKEN"):
        require_token(settings, _Request(), mutation=True)
    assert _code(settings, _Request(), mutation=False) == "token_not_configured"
    opened = Settings(api_token="", api_reads_require_token=False)
    assert _code(opened, _Request(), mutation=False) is None


def test_bearer_token_checked() -> None:
    settings = Settings(api_token="s3cret")
    assert _code(settings, _Request(), True) == "missing_token"
    assert _code(settings, _Request({"Authorization": "Basic s3cret"}), True) == "missing_token"
    assert _code(settings, _Request({"Authorization": "Bearer nope"}), True) == "wrong_token"
    assert _code(settings, _Request({"Authorization": "Bearer s3cret"}), True) is None
    assert _code(settings, _Request({"Authorization": "bearer s3cret"}), True) is None


def test_reads_require_the_token_unless_opened() -> None:
    settings = Settings.from_env({"LS_API_TOKEN": "s3cret"})
    assert _code(settings, _Request(), False) == "missing_token"
    assert _code(settings, _Request({"Authorization": "Bearer s3cret"}), False) is None
    opened = Settings.from_env({"LS_API_TOKEN": "s3cret", "LS_API_READS_REQUIRE_TOKEN": "0"})
    assert _code(opened, _Request(), False) is None
    assert _code(opened, _Request(), True) == "missing_token"


def test_reply_codes_map_to_statuses() -> None:
    assert status_for("not_found", "segment_id") == 404
    assert status_for("already_exists", "segment.id") == 409
    assert status_for("in_use", "segment_id") == 409
    assert status_for("limit_exceeded", None) == 409  # active segments limit
    assert status_for("limit_exceeded", "segment.rules") == 400  # definition too big
    assert status_for("unknown_op", "segment.rules[0].where.op") == 400
