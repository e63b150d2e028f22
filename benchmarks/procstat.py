"""Per-process CPU seconds and resident memory from /proc, to attribute every figure.

The processes of a run: the worker(s), redis-server and the Kafka broker's JVM (found by the
TCP port they listen on, so a machine with several brokers or Redis servers picks the right
one) and this benchmark process itself (its producer and pollers).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["CpuMeter", "cpu_seconds", "listening_pid", "rss_bytes"]

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (None once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # fields from the 3rd (state) on
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14, 15)


def rss_bytes(pid: int) -> int | None:
    """Resident set size (VmRSS) of a process, in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes


def listening_pid(port: int) -> int | None:
    """The process listening on a local TCP port (None if not found or not visible)."""
    inodes = {f"socket:[{i}]" for i in _listening_inodes(port)}
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


class CpuMeter:
    """CPU seconds of named groups of processes between two snapshots."""

    def __init__(self, groups: Mapping[str, list[int]]) -> None:
        self.groups = {name: list(pids) for name, pids in groups.items() if pids}

    def snapshot(self) -> dict[str, float]:
        return {
            name: sum(cpu_seconds(pid) or 0.0 for pid in pids) for name, pids in self.groups.items()
        }

    @staticmethod
    def delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
        return {name: round(after[name] - before.get(name, 0.0), 3) for name in after}
