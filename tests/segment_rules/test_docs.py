"""The examples in docs/segments.md are valid definitions (keeps the docs honest)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from segment_rules import compile_segment

DOC = Path(__file__).parents[2] / "docs" / "segments.md"
BLOCKS = re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S)
EXAMPLES = [json.loads(b) for b in BLOCKS if "COND" not in b]


def test_the_doc_has_examples() -> None:
    assert len(EXAMPLES) >= 4


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: str(e["id"]))
def test_doc_example_compiles(example: dict[str, object]) -> None:
    compile_segment(example)
