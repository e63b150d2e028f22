"""Terminal rendering helpers."""

from __future__ import annotations

import pytest

from streams.operator import render
from streams.operator.cli import parse_since, parse_value
from streams.operator.errors import UsageError


def test_sparkline_scales_between_min_and_max() -> None:
    assert render.sparkline([0, 7]) == "▁█"
    assert render.sparkline([3, 3, 3]) == "▅▅▅"
    assert render.sparkline([0, 0]) == "▁▁"
    assert render.sparkline([]) == ""
    assert len(render.sparkline(list(range(100)), width=10)) == 10


def test_table_aligns_numbers_right() -> None:
    text = render.table([["a", 5], ["bbb", 120]], ["ID", "N"])
    assert text.splitlines() == ["ID     N", "---  ---", "a      5", "bbb  120"]
    assert render.cell(None) == "-" and render.cell(["x", "y"]) == "x,y"
    assert render.when(0) == "1970-01-01 00:00:00"


def test_since_and_values() -> None:
    assert parse_since("7d") == 7 * 86_400_000
    assert parse_since("30m") == 1_800_000
    with pytest.raises(UsageError):
        parse_since("week")
    assert parse_value("40") == 40
    assert parse_value("true") is True
    assert parse_value("gold") == "gold"
    assert parse_value("gold,platinum", "in") == ["gold", "platinum"]
    assert parse_value("1, 2", "not_in") == [1, 2]
    assert parse_value('["a,b"]', "in") == ["a,b"]
    assert parse_value("a,b", "eq") == "a,b"
