"""The error root and DefinitionError fields."""

from __future__ import annotations

import pytest

from segment_rules import DefinitionError, LiveSegmentsError


def test_definition_error_carries_fields() -> None:
    err = DefinitionError("unknown_op", "unknown operator 'x' at op", "op", "eq")
    assert isinstance(err, LiveSegmentsError)
    assert (err.code, err.path, err.suggestion, str(err)) == (
        "unknown_op",
        "op",
        "eq",
        "unknown operator 'x' at op",
    )
    assert "unknown_op" in repr(err)


def test_unknown_codes_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown error code"):
        DefinitionError("oops", "message")  # type: ignore[arg-type]
