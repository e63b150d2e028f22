"""The compiled build: the hot pure modules as mypyc C extensions, used only when they match.

`scripts/build_compiled.py` (run by `scripts/bootstrap.sh`) compiles `MODULES` with mypyc
into `.local/compiled/<python tag>/` (git-ignored, outside the source packages) and writes a
manifest there with the SHA-256 of each module's source. Importing this module (every package
that holds a compiled module imports it first) puts a finder in front of `sys.meta_path` that
loads those extensions instead of the `.py` files, and only when every source still hashes
to its manifest entry: one edited `.py` and the whole build is set aside (its modules call
each other natively, so none of it can be mixed with an edited source).

`LS_COMPILED` chooses:
- unset or `auto`: the compiled build when it is there and current, else the pure modules
  (with a warning naming the stale module and the rebuild command when there is a build);
- `1`: the compiled build or `CompiledBuildError` (missing or stale: what, and the command);
- `0`: the pure modules, always (the mutation tests, a machine without a compiler).

`BUILD` says which one this process runs; the worker logs it, the benchmarks print it.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

from livesegments_error import LiveSegmentsError

__all__ = [
    "BUILD",
    "MANIFEST",
    "MODULES",
    "REBUILD",
    "Build",
    "CompiledBuildError",
    "build_dir",
    "choose",
    "source_digests",
    "why_stale",
]

MODULES: tuple[str, ...] = (
    "segment_rules._aggregate",
    "segment_rules._append",
    "segment_rules._predicates",
    "segment_rules._values",
    "segment_rules._walk",
    "segment_rules.compile",
    "segment_rules.history",
    "segment_rules.limits",
    "segment_rules.model",
    "segment_rules.profile",
    "state._codec",
    "state.commit",
    "state.ordinals",
    "state.outbox",
    "state.partition",
    "state.profile",
    "streams.engine.machine",
    "streams.engine.tasks",
    "streams.messages.events",
    "streams.messages.outputs",
)
"""What the compiled build holds (all pure, CPU-bound and `mypy --strict` clean)."""

REBUILD = "scripts/build_compiled.py (or scripts/bootstrap.sh)"
"""The command that brings the build up to date, for the messages."""

_ROOT = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
"""The build's manifest file: `{"sources": {module: sha256}, "python", "mypy"}`."""


class CompiledBuildError(LiveSegmentsError):
    """`LS_COMPILED=1` and the compiled build is missing, stale or does not load."""

    code = "compiled_build"


@dataclass(frozen=True)
class Build:
    """Which modules this process runs."""

    compiled: bool
    detail: str
    """Why, in words: the build directory and its modules, or why the pure modules run."""

    def describe(self) -> str:
        """One line for logs and benchmark output."""
        return f"{'compiled (mypyc)' if self.compiled else 'pure Python'}: {self.detail}"


def build_dir(root: Path = _ROOT) -> Path:
    """Where the build of this source tree for this interpreter lives."""
    return root / ".local" / "compiled" / sys.implementation.cache_tag


def source_digests(root: Path = _ROOT, modules: Sequence[str] = MODULES) -> dict[str, str]:
    """SHA-256 of each module's source, by module name."""
    return {
        name: hashlib.sha256((root / (name.replace(".", "/") + ".py")).read_bytes()).hexdigest()
        for name in modules
    }


def why_stale(root: Path = _ROOT) -> str | None:
    """Why the build of the sources under `root` cannot be used for them as they are now, or
    None when it can."""
    directory = build_dir(root)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        return f"no compiled build in {directory}; build it with {REBUILD}"
    except ValueError as exc:
        return f"unreadable manifest {directory / MANIFEST} ({exc}); rebuild with {REBUILD}"
    built: dict[str, str] = manifest.get("sources", {})
    if sorted(built) != sorted(MODULES):
        return f"the build in {directory} holds other modules than MODULES; rebuild with {REBUILD}"
    edited = [name for name, digest in source_digests(root).items() if built[name] != digest]
    if edited:
        return (
            f"the compiled build is stale: {', '.join(edited)} changed since it was built "
            f"({directory}); rebuild with {REBUILD}"
        )
    return None


class _Finder(importlib.abc.MetaPathFinder):
    """Loads the build's extension modules (and their shared library) by name."""

    def __init__(self, paths: dict[str, Path]) -> None:
        self.paths = paths

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        location = self.paths.get(fullname)
        if location is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(location))
        return importlib.machinery.ModuleSpec(fullname, loader, origin=str(location))


def _extension(directory: Path, name: str) -> Path:
    parts = name.split(".")
    found = sorted(directory.joinpath(*parts[:-1]).glob(parts[-1] + ".cpython-*.so"))
    if not found:
        raise FileNotFoundError(f"no extension for {name} in {directory}")
    return found[0]


def choose(mode: str, root: Path = _ROOT) -> tuple[Build, dict[str, Path]]:
    """The build to run for `LS_COMPILED=mode` and the sources under `root`, with the
    extension file of each module name when it is the compiled one (else no files)."""
    mode = mode.strip().lower() or "auto"
    if mode not in ("0", "1", "auto"):
        raise CompiledBuildError(
            f"LS_COMPILED={mode!r}: expected 0 (pure), 1 (compiled) or auto (compiled when "
            "built and current)",
            path="LS_COMPILED",
        )
    if mode == "0":
        return Build(False, "LS_COMPILED=0"), {}
    directory = build_dir(root)
    stale = why_stale(root)
    paths: dict[str, Path] = {}
    if stale is None:
        try:
            paths = {name: _extension(directory, name) for name in MODULES}
            libraries = sorted(directory.glob("*__mypyc.cpython-*.so"))
            paths.update({lib.name.split(".")[0]: lib for lib in libraries})
        except FileNotFoundError as exc:
            stale = f"the compiled build is incomplete ({exc}); rebuild with {REBUILD}"
    if stale is not None:
        if mode == "1":
            raise CompiledBuildError(f"LS_COMPILED=1 but {stale}", path=str(directory))
        if (directory / MANIFEST).exists():  # a build, set aside: say so
            print(f"livesegments: running the pure modules: {stale}", file=sys.stderr)
        return Build(False, stale.split(";")[0]), {}
    return Build(True, f"{len(MODULES)} modules from {directory}"), paths


def _install() -> Build:
    build, paths = choose(os.environ.get("LS_COMPILED", "auto"))
    if not build.compiled:
        return build
    loaded = [name for name in MODULES if name in sys.modules]
    if loaded:
        raise CompiledBuildError(
            f"{', '.join(loaded)} imported before livesegments_compiled: import the package first",
            path=loaded[0],
        )
    sys.meta_path.insert(0, _Finder(paths))
    return build


BUILD: Build = _install()
"""The build this process runs, decided once, when this module is first imported."""
