"""Entry point of the analyses run in a worker process: imports the heavy libraries (numpy,
scikit-learn) only there, so the worker that serves the API starts without them."""

from __future__ import annotations

from typing import Any

__all__ = ["run"]


def run(task: str, *args: Any) -> Any:
    """Run one analysis by name: differentiators, measure, activity or lookalikes."""
    if task == "differentiators":
        from .differentiators import differentiators

        return differentiators(*args)
    if task == "measure":
        from .measure import suggest_for_measure

        return suggest_for_measure(*args)
    if task == "activity":
        from .rfm import suggest_by_activity

        return suggest_by_activity(*args)
    if task == "lookalikes":
        from .lookalike import find_lookalikes

        result = find_lookalikes(*args)
        result.pop("scores", None)  # every non-member's score: not sent back
        return result
    raise ValueError(f"unknown analysis {task!r}")
