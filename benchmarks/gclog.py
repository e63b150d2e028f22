"""The pauses a JVM's unified log records inside a time window: the broker's stops in a phase.

    .venv/bin/python -m benchmarks.gclog /tmp/bj/a/gc.log --run /tmp/bj/a.json
    .venv/bin/python -m benchmarks.gclog /tmp/bj/a/gc.log --from 1796039000 --to 1796039023

The JVM must log with the `time` decoration, e.g. `LS_KAFKA_JVM_OPTS="-Xlog:gc*,safepoint:
file=/tmp/bj/a/gc.log:time,uptime,level,tags" scripts/services.sh start kafka`. Two kinds of
lines count:

- `safepoint`: every stop of the Java threads, whatever the collector (G1's and Serial's
  collections, ZGC's and Shenandoah's short pauses, deoptimisation, the 1 s cleanups); its
  `Total` (reaching the safepoint + cleanup + at it) is how long a request handler was stopped.
- `gc` pause lines (`Pause Young ... 12.345ms`, ZGC's `Pause Mark Start 0.010ms`): the
  collector's own account of its pauses, to tell collections from other safepoints.

A pause counts in a window when its line (written as it ends) falls inside it. `--run` takes
the windows of a `benchmarks.latency_run --output` file (each row's `window_epoch_s`).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["Pause", "PauseSummary", "parse", "summarize"]

_TIME = re.compile(r"^\[(\d{4}-\d\d-\d\dT[\d:.]+[+-]\d{4})\]")
_SAFEPOINT = re.compile(r'Safepoint "(?P<name>[^"]+)".*?Total: (?P<ns>\d+) ns')
_GC_PAUSE = re.compile(
    r"\[gc[ ,\w]*\]\s*GC\(\d+\) (?P<name>Pause [A-Za-z ]+?)"  # "Pause Young", "Pause Mark Start"
    r"(?: \(.*\))?(?: \S*->\S*)? (?P<ms>[\d.]+)ms$"  # (causes) heap before->after(size) 1.2ms
)


@dataclass(frozen=True, slots=True)
class Pause:
    """One pause: when its line was written (epoch s), its kind, its name, its length."""

    at: float
    kind: str  # "safepoint" or "gc"
    name: str
    ms: float


@dataclass(frozen=True, slots=True)
class PauseSummary:
    """The pauses of one kind in a window: how many, their sum and their spread."""

    count: int
    total_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    over_1ms: int
    by_name: dict[str, tuple[int, float]]  # name -> (count, total ms)

    def line(self) -> str:
        names = ", ".join(
            f"{name} {count} / {total:.1f} ms"
            for name, (count, total) in sorted(self.by_name.items(), key=lambda kv: -kv[1][1])
        )
        return (
            f"{self.count} pauses, {self.total_ms:.1f} ms in all, p50 {self.p50_ms:.2f} p99 "
            f"{self.p99_ms:.2f} max {self.max_ms:.2f} ms, {self.over_1ms} over 1 ms ({names})"
        )


def _epoch(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


def parse(lines: Iterable[str]) -> list[Pause]:
    """The pauses in a unified JVM log's lines (lines without a `time` decoration are skipped)."""
    pauses = []
    for raw in lines:
        line = raw.rstrip()
        stamp = _TIME.match(line)
        if stamp is None:
            continue
        if (found := _SAFEPOINT.search(line)) is not None:
            at = _epoch(stamp.group(1))
            pauses.append(Pause(at, "safepoint", found["name"], int(found["ns"]) / 1e6))
        elif (found := _GC_PAUSE.search(line)) is not None:
            at = _epoch(stamp.group(1))
            pauses.append(Pause(at, "gc", found["name"].strip(), float(found["ms"])))
    return pauses


def _percentile(ordered: Sequence[float], q: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def summarize(pauses: Iterable[Pause], kind: str, start: float, end: float) -> PauseSummary:
    """The pauses of `kind` whose lines fall in [start, end]."""
    chosen = [p for p in pauses if p.kind == kind and start <= p.at <= end]
    ordered = sorted(p.ms for p in chosen)
    by_name: dict[str, tuple[int, float]] = {}
    for p in chosen:
        count, total = by_name.get(p.name, (0, 0.0))
        by_name[p.name] = (count + 1, total + p.ms)
    return PauseSummary(
        count=len(chosen),
        total_ms=sum(ordered),
        p50_ms=_percentile(ordered, 50),
        p99_ms=_percentile(ordered, 99),
        max_ms=ordered[-1] if ordered else 0.0,
        over_1ms=sum(1 for ms in ordered if ms > 1.0),
        by_name=by_name,
    )


def _windows(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    if args.run is not None:
        rows = json.loads(args.run.read_text())["rows"]
        return [
            (f"{row.get('arm', '?')} r{row.get('round', '?')}", *row["window_epoch_s"])
            for row in rows
            if "window_epoch_s" in row
        ]
    if args.start is None or args.end is None:
        raise SystemExit("gclog: give --run FILE, or --from and --to (epoch seconds)")
    return [("window", args.start, args.end)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="the JVM's unified log (-Xlog:...:file=)")
    parser.add_argument("--run", type=Path, help="a latency_run --output file: its windows")
    parser.add_argument("--from", dest="start", type=float, help="window start, epoch s")
    parser.add_argument("--to", dest="end", type=float, help="window end, epoch s")
    args = parser.parse_args(argv)
    pauses = parse(args.log.read_text(errors="replace").splitlines())
    for label, start, end in _windows(args):
        print(f"{label} ({end - start:.1f} s):")
        for kind in ("safepoint", "gc"):
            print(f"    {kind:9s} {summarize(pauses, kind, start, end).line()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
