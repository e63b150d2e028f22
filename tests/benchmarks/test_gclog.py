"""The GC-log reader: the pauses of a JVM's unified log (G1, Serial, ZGC lines as JDK 17 writes
them) and their sums inside a window, the lines outside it left out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import gclog

_LOG = """\
[2026-11-30T11:48:06.804+0000][1.234s][info][gc,start    ] GC(0) Pause Young (Normal) (G1 Evacuation Pause)
[2026-11-30T11:48:06.804+0000][1.234s][info][gc          ] GC(0) Pause Young (Normal) (G1 Evacuation Pause) 12M->5M(258M) 35.413ms
[2026-11-30T11:48:06.805+0000][1.235s][info][safepoint   ] Safepoint "G1CollectForAllocation", Time since last: 1000 ns, Reaching safepoint: 25478 ns, Cleanup: 1000 ns, At safepoint: 35500000 ns, Total: 35526478 ns
[2026-11-30T11:48:10.669+0000][5.100s][info][gc          ] GC(5) Pause Remark 10M->10M(256M) 2.737ms
[2026-11-30T11:48:10.670+0000][5.101s][info][safepoint   ] Safepoint "G1PauseRemark", Time since last: 1000 ns, Reaching safepoint: 20000 ns, Cleanup: 0 ns, At safepoint: 2800000 ns, Total: 2820000 ns
[2026-11-30T11:48:11.000+0000][5.431s][info][gc,phases   ] GC(6) Pause Mark Start 0.010ms
[2026-11-30T11:48:11.000+0000][5.431s][info][gc          ] GC(7) Pause Young (Allocation Failure) 80M->10M(250M) 5.123ms
[2026-11-30T11:48:12.000+0000][6.431s][info][safepoint   ] Safepoint "Cleanup", Time since last: 1000145325 ns, Reaching safepoint: 25478 ns, Cleanup: 58199 ns, At safepoint: 23654 ns, Total: 107331 ns
[2026-11-30T11:48:20.000+0000][14.431s][info][gc          ] GC(8) Pause Young (Normal) (G1 Evacuation Pause) 99M->9M(258M) 12.000ms
[6.500s][info][gc          ] GC(9) Pause Young (Normal) (G1 Evacuation Pause) 99M->9M(258M) 50.000ms
"""  # noqa: E501

_AT = gclog._epoch("2026-11-30T11:48:06.000+0000")


def test_every_collector_s_pause_line_and_safepoint_is_read() -> None:
    pauses = gclog.parse(_LOG.splitlines())
    got = [(p.kind, p.name, p.ms) for p in pauses]
    assert got == [
        ("gc", "Pause Young", 35.413),
        ("safepoint", "G1CollectForAllocation", 35.526478),
        ("gc", "Pause Remark", 2.737),
        ("safepoint", "G1PauseRemark", 2.82),
        ("gc", "Pause Mark Start", 0.010),
        ("gc", "Pause Young", 5.123),
        ("safepoint", "Cleanup", 0.107331),
        ("gc", "Pause Young", 12.0),
    ]
    assert pauses[0].at == pytest.approx(_AT + 0.804)


def test_only_the_pauses_inside_the_window_count() -> None:
    pauses = gclog.parse(_LOG.splitlines())
    gc = gclog.summarize(pauses, "gc", _AT + 1, _AT + 13)  # 11:48:07..11:48:19
    assert gc.count == 3
    assert gc.total_ms == pytest.approx(2.737 + 0.010 + 5.123)
    assert gc.max_ms == 5.123
    assert gc.over_1ms == 2
    assert gc.by_name == {
        "Pause Remark": (1, 2.737),
        "Pause Mark Start": (1, 0.010),
        "Pause Young": (1, 5.123),
    }
    safepoints = gclog.summarize(pauses, "safepoint", _AT + 1, _AT + 13)
    assert safepoints.count == 2
    assert safepoints.total_ms == pytest.approx(2.82 + 0.107331)


@given(st.lists(st.floats(min_value=0.001, max_value=500.0), max_size=60))
def test_a_window_s_sum_and_spread_are_its_pauses(lengths: list[float]) -> None:
    pauses = [gclog.Pause(_AT + i, "gc", "Pause Young", ms) for i, ms in enumerate(lengths)]
    outside = [gclog.Pause(_AT - 5, "gc", "Pause Young", 1e4)]
    summary = gclog.summarize(outside + pauses, "gc", _AT, _AT + len(lengths))
    assert summary.count == len(lengths)
    assert summary.total_ms == pytest.approx(sum(lengths))
    assert summary.max_ms == (max(lengths) if lengths else 0.0)
    assert summary.p50_ms <= summary.p99_ms <= summary.max_ms


def test_the_windows_of_a_latency_run_are_summed_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "gc.log"
    log.write_text(_LOG)
    run = tmp_path / "run.json"
    rows = [
        {"arm": "a", "round": 0, "window_epoch_s": [_AT, _AT + 2]},
        {"arm": "a", "round": 1, "window_epoch_s": [_AT + 13, _AT + 15]},
    ]
    run.write_text(json.dumps({"rows": rows}))
    assert gclog.main([str(log), "--run", str(run)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "a r0 (2.0 s):"
    assert out[2].split()[:6] == ["gc", "1", "pauses,", "35.4", "ms", "in"]
    assert out[3] == "a r1 (2.0 s):"
    assert out[5].split()[:6] == ["gc", "1", "pauses,", "12.0", "ms", "in"]
