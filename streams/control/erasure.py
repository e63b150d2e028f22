"""`forget`: erase one customer from every partition's state (registered in `ControlRuntime`).

`{"command": "forget", "customer_id": ...}` starts a job whose task goes to every events
partition like any other, so it is carried out in the partition's ordered processing: events
of that customer before it are applied first, events after it start a new profile. The
partition that holds the customer publishes `exited` with cause `erased` for each segment
they were in, then deletes their profile (attributes, event history, recent event ids), their
timer and their entry in the partition's customer index, in one commit. The reply (once every
partition reported) says whether any partition held the customer (`erased`) and how many
memberships ended (`job.exited`).
"""

from __future__ import annotations

from typing import Any

from ..errors import CommandError, field_error
from .context import CommandEnv, CommandHandler, Context

__all__ = ["HANDLERS", "MAX_CUSTOMER_ID"]

MAX_CUSTOMER_ID = 1024
"""Characters in a customer id given to `forget` (events are capped by their own size limit)."""


def customer_id_of(command: dict[str, Any]) -> str:
    value = command.get("customer_id")
    if not isinstance(value, str) or not value:
        raise field_error(
            value,
            f"'customer_id' must be a non-empty string (whom to forget), got {value!r:.100}",
            "customer_id",
        )
    if len(value) > MAX_CUSTOMER_ID:
        raise CommandError(
            "invalid_value",
            f"'customer_id' has {len(value)} characters; at most {MAX_CUSTOMER_ID}",
            "customer_id",
        )
    try:
        value.encode()
    except UnicodeEncodeError:
        raise CommandError(
            "invalid_value",
            f"'customer_id' {value!r:.100} is not valid Unicode text (a lone surrogate)",
            "customer_id",
        ) from None
    return value


async def _forget(
    runtime: CommandEnv, ctx: Context, command: dict[str, Any], request_id: str
) -> dict[str, Any] | None:
    customer_id = customer_id_of(command)
    reply = {"customer_id": customer_id}
    runtime.start_job(ctx, request_id, "forget", "erased", [], [], reply, customer_id=customer_id)
    return None


HANDLERS: dict[str, CommandHandler] = {"forget": _forget}
