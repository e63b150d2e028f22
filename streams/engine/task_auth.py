"""Task messages are carried out only when the control plane issued them.

Anyone who may produce to the events topic can add the `ls-task` header to a message. So the
control agent records in the job (in the registry, which only it writes) the sha256 of the
task message it publishes, and a partition runs a task message only when:

* it decodes to a map with a `job_id` string;
* that job exists in the registry and was issued with a task digest;
* the message's sha256 equals the job's digest (so its actions, segments, definitions and
  customer id are exactly those the control plane wrote);
* the job has not finished, and this partition has not reported on it yet (a replayed copy of
  an old task does nothing).

Anything else is dead-lettered with code `forged_task` and changes nothing. A digest in the
registry needs no secret to distribute: forging a task then needs write access to Redis,
which already holds all state.
"""

from __future__ import annotations

import hmac

from state import Job, RegistryStore

from ..errors import BadMessage
from ..messages import FORGED_TASK, TaskMessage, task_digest

__all__ = ["verified_task"]


def _refuse(reason: str) -> BadMessage:
    return BadMessage(FORGED_TASK, f"task message refused: {reason}")


async def verified_task(
    registry: RegistryStore, partition: int, value: bytes | None
) -> tuple[TaskMessage, Job]:
    """The task a message carries and its job, or BadMessage(`forged_task`) naming the reason."""
    try:
        task = TaskMessage.decode(value)
    except BadMessage as exc:
        raise _refuse(exc.message) from None
    job = await registry.job(task.job_id)
    if job is None:
        raise _refuse(f"no job {task.job_id[:64]!r} in the registry")
    if job.task_digest is None or not hmac.compare_digest(
        job.task_digest, task_digest(value or b"")
    ):
        raise _refuse(f"its body is not the task message job {task.job_id!r} issued")
    if not 0 <= partition < job.partitions:
        raise _refuse(f"job {task.job_id!r} has no task for partition {partition}")
    if partition in job.done or job.finished_at is not None:
        raise _refuse(f"job {task.job_id!r} already ended on partition {partition} (a replay)")
    return task, job
