"""What every subcommand module of the CLI shares: command types and argument readers."""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import UsageError
from .http import ApiClient

__all__ = ["Add", "Command", "load_definition", "parse_since", "parse_value", "quoted"]

Command = Callable[[ApiClient, argparse.Namespace], Any]
"""A subcommand: runs against the API and returns what to print."""
Add = Callable[[str, Command, str], argparse.ArgumentParser]
"""Registers a subcommand (name, run, help) and returns its parser."""
_DURATION = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def quoted(value: str) -> str:
    """`value` as one URL path segment."""
    return urllib.parse.quote(value, safe="")


def load_definition(path: str) -> dict[str, Any]:
    """A definition from a JSON or YAML file (a bare definition or {"segment": ...})."""
    file = Path(path)
    try:
        text = sys.stdin.read() if path == "-" else file.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    value: Any
    if file.suffix.lower() in (".yaml", ".yml"):
        value = _yaml(text, path)
    else:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            if file.suffix.lower() == ".json":
                raise UsageError(f"{path} is not valid JSON: {exc}") from None
            value = _yaml(text, path)
    if isinstance(value, dict) and isinstance(value.get("segment"), dict):
        value = value["segment"]
    if not isinstance(value, dict):
        raise UsageError(f"{path} must hold a segment definition (an object), not {value!r:.60}")
    return value


def _yaml(text: str, path: str) -> Any:
    try:
        import yaml  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        raise UsageError(f"{path}: reading YAML needs PyYAML (pip install pyyaml)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {exc}") from None


def parse_since(text: str) -> int:
    """'7d', '12h', '30m' -> milliseconds."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise UsageError(f"--since {text!r}: expected a number and a unit s/m/h/d/w, like 7d")
    return int(match.group(1)) * _UNIT_S[match.group(2)] * 1000


def parse_value(text: str, op: str | None = None) -> Any:
    """--value: JSON when it parses (numbers, true, [..]), else the text itself; for `in` and
    `not_in` a plain `a,b,c` is the list of its items."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        if op in ("in", "not_in"):
            return [parse_value(item.strip()) for item in text.split(",") if item.strip()]
        return text
