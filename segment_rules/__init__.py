"""The segment rule language: parse, validate, compile and evaluate. No I/O.

Typical use::

    segment = compile_segment(parse_definition(json.loads(text)))
    segment.evaluate(profile, now_ms)
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_LIMITS",
    "NO_LIMITS",
    "AppendEffect",
    "CompiledSegment",
    "DefinitionError",
    "DictProfile",
    "EventRecord",
    "EventSeries",
    "Limits",
    "LiveSegmentsError",
    "ProfileView",
    "SegmentDefinition",
    "check_references",
    "compile_segment",
    "definition_to_json",
    "dependents",
    "parse_definition",
    "topological_order",
]

import livesegments_compiled  # noqa: F401  (the compiled build's finder, first)

from ._append import AppendEffect
from .catalog import check_references, dependents, topological_order
from .compile import CompiledSegment, compile_segment
from .errors import DefinitionError, LiveSegmentsError
from .history import EventSeries
from .limits import DEFAULT_LIMITS, NO_LIMITS, Limits
from .model import SegmentDefinition
from .parse import parse_definition
from .profile import DictProfile, EventRecord, ProfileView
from .serialize import definition_to_json
