"""What the figures were measured on: CPU, cores, RAM, software versions."""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import livesegments_compiled
from state.connect import connect_sync

__all__ = ["describe_machine", "redis_forks"]

_PACKAGES = ("faust-streaming", "aiokafka", "kafka-python", "redis", "msgpack")


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    found = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return found.group(1).strip() if found else "unknown"


def _ram_gib() -> float:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return 0.0
    found = re.search(r"^MemTotal:\s*(\d+) kB", text, re.M)
    return round(int(found.group(1)) / 1024 / 1024, 1) if found else 0.0


def _kafka_version(root: Path) -> str:
    jars = sorted((root / "services" / "kafka" / "target" / "lib").glob("kafka_2.13-*.jar"))
    if not jars:
        return "unknown"
    return jars[-1].name.removeprefix("kafka_2.13-").removesuffix(".jar")


def describe_machine(redis_url: str, root: Path) -> dict[str, Any]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    client = connect_sync(redis_url)
    try:
        server = client.info("server")
        persistence = client.info("persistence")
        rewrite_min = _config(client, "auto-aof-rewrite-min-size")
    finally:
        client.close()
    versions["redis-server"] = str(server.get("redis_version", "unknown"))
    versions["kafka-broker"] = _kafka_version(root)
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "ram_gib": _ram_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "redis_aof": bool(persistence.get("aof_enabled", 0)),
        "redis_aof_rewrite_min_bytes": int(rewrite_min) if rewrite_min else None,
        "versions": versions,
        "build": livesegments_compiled.BUILD.describe(),
    }


def _config(client: Any, name: str) -> str | None:
    """A Redis setting (None where CONFIG is refused, as managed services do)."""
    try:
        found = client.config_get(name)
    except Exception:
        return None
    value = found.get(name) if isinstance(found, dict) else None
    return value.decode() if isinstance(value, bytes) else value


def redis_forks(redis_url: str) -> dict[str, int]:
    """Redis' forks so far (an AOF rewrite is one: its child rewrites the whole dataset, ~2 s
    of a core for the bench's 100k customers, on the cores the worker shares) and whether a
    rewrite or a save runs now."""
    client = connect_sync(redis_url)
    try:
        stats, persistence = client.info("stats"), client.info("persistence")
    finally:
        client.close()
    return {
        "forks": int(stats.get("total_forks", 0)),
        "aof_rewriting": int(persistence.get("aof_rewrite_in_progress", 0)),
        "bgsaving": int(persistence.get("rdb_bgsave_in_progress", 0)),
    }
