"""Which `_task_done` reports a job accepts (no services: the rule itself)."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state import Job
from streams.control.jobs import fold_report, report_problem
from streams.errors import BadMessage
from streams.messages import TaskReport

from ..hypothesis_profiles import examples

JOB = Job("j1", "r1", "refresh", ("s",), 4, 1, {}, task_digest="0" * 64)
STATS = {"evaluated": 3, "entered": 1, "exited": 0}


def _report(**changes: Any) -> dict[str, Any]:
    return {"command": "_task_done", "job_id": "j1", "partition": 1, "stats": STATS, **changes}


def _problem(job: Job, raw: dict[str, Any]) -> str | None:
    """What the control plane says of a report: refused as decoded, or for this job."""
    try:
        report = TaskReport.decode(raw)
    except BadMessage as exc:
        return exc.message
    return report_problem(job, report)


def test_a_report_as_partitions_write_it_is_folded() -> None:
    report = _report(segments={"s": {"status": "done", "error": None, **STATS}}, done=5, total=5)
    assert _problem(JOB, report) is None
    job = fold_report(JOB, TaskReport.decode(report), 10)
    assert job.done[1]["entered"] == 1 and job.tasks == {}


@pytest.mark.parametrize(
    "report",
    [
        _report(partition=4),
        _report(partition=-1),
        _report(partition="1"),
        _report(partition=True),
        _report(stats=None),
        _report(stats={"evaluated": 1}),
        _report(stats={**STATS, "entered": -5}),
        _report(stats={**STATS, "entered": 2**64}),
        _report(done="all"),
        _report(segments=[]),
        _report(segments={"s": {"status": "won"}}),
        _report(segments={"s": {"status": "done", "error": 7}}),
        _report(segments={"s": {"status": "done", "entered": 1.5}}),
        _report(exited_segments="s"),
    ],
)
def test_malformed_reports_are_refused(report: dict[str, Any]) -> None:
    assert _problem(JOB, report)


def test_reports_for_jobs_without_partition_tasks_are_refused() -> None:
    export = Job("j2", "r2", "export", ("s",), 1, 1, {})
    assert _problem(export, _report(job_id="j2", partition=0))


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=examples(60), deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["partition", "stats", "segments", "done", "erased", "exited_segments", "x"]
        ),
        _VALUES,
    )
)
def test_any_report_is_refused_or_folds_without_raising(extra: dict[str, Any]) -> None:
    report = {**_report(), **extra}
    if _problem(JOB, report) is None:
        folded = fold_report(JOB, TaskReport.decode(report), 10)
        assert set(folded.done[report["partition"]]) >= {"evaluated", "entered", "exited"}


def test_a_report_survives_its_encoding() -> None:
    report = TaskReport.decode(
        _report(segments={"s": {"status": "failed", "error": "boom", **STATS}}, done=5, total=9)
    )
    again = TaskReport.decode(msgpack.unpackb(report.encode(), raw=False))
    assert again == report
