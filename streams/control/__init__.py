"""The control plane: operator commands, their jobs, and the registry they change.

`runtime` consumes the control topic in order, dispatches each command to its handler and
commits the registry with the messages to publish; `context` is what handlers see; one
module per command family (`segments`, `lifecycle`, `jobs`, `exports`); `schedules` parses
the times and cron expressions commands carry.
"""

from .runtime import ControlRuntime

__all__ = ["ControlRuntime"]
