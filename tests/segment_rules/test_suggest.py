"""Did-you-mean hints: exact (any case), aliases, close spellings, longest known prefix."""

from __future__ import annotations

import pytest

from segment_rules._suggest import suggest

OPS = ["eq", "ne", "exists", "not_exists", "within_last", "not_within_last", "starts_with"]


@pytest.mark.parametrize(
    ("word", "options", "hint"),
    [
        (" EQ ", OPS, "eq"),  # trimmed and lowered
        ("==", OPS, "eq"),  # an alias
        ("older_than", OPS, "not_within_last"),
        ("older_than", ["eq"], None),  # an alias only if it is an option here
        ("startswith", OPS, "starts_with"),  # close
        ("exsits", OPS, "exists"),
        ("not_exist", OPS, "not_exists"),  # the closest of several close ones
        ("within_the_last_days", OPS, "within_last"),  # not close: the longest known prefix
        ("not_within_last_or_more", OPS, "not_within_last"),
        ("e", ["e", "ex"], "e"),
        ("ex_or_something_else", ["ex"], "ex"),  # a prefix of 2 characters will do
        ("ex_or_something_else", ["e"], None),  # 1 is too short
        ("qqqqqq", OPS, None),
        ("anything", [], None),
    ],
)
def test_suggest(word: str, options: list[str], hint: str | None) -> None:
    assert suggest(word, iter(options)) == hint
