"""Segment lifecycle commands beyond the engine's core ones (registered in `ControlRuntime`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .control import CommandHandler

__all__ = ["HANDLERS"]

HANDLERS: dict[str, CommandHandler] = {}
