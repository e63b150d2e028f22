"""Compile `livesegments_compiled.MODULES` with mypyc into `.local/compiled/<python tag>/`.

    .venv/bin/python scripts/build_compiled.py            # build (about 1.5 CPU minutes)
    .venv/bin/python scripts/build_compiled.py --if-stale # only when missing or stale

The extensions are built outside the source packages (an in-place `.so` beside its `.py`
would win the import even after the `.py` is edited); `livesegments_compiled` loads them only
while every source still hashes to the manifest written here. The build goes to a scratch
directory first and replaces the old one only when complete, so a failed build leaves none.
Nothing is installed into the venv.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["LS_COMPILED"] = "0"  # this process runs the pure modules, whatever the caller's

import livesegments_compiled as build  # noqa: E402


def compile_modules(target: Path) -> None:
    """mypyc then the C compiler, into `target` (setuptools' build_ext, nothing installed)."""
    from mypyc.build import mypycify
    from setuptools import setup

    paths = [name.replace(".", "/") + ".py" for name in build.MODULES]
    scratch = target / "_work"
    setup(
        name="livesegments-compiled",
        ext_modules=mypycify(paths, opt_level="3", target_dir=str(scratch / "c")),
        script_args=[
            "--quiet",
            "build_ext",
            "--build-lib",
            str(target),
            "--build-temp",
            str(scratch / "temp"),
        ],
        py_modules=[],
        packages=[],
    )
    shutil.rmtree(scratch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--if-stale", action="store_true", help="skip when the build is current")
    args = parser.parse_args(argv)
    directory = build.build_dir()
    reason = build.why_stale()
    if args.if_stale and reason is None:
        print(f"compiled build: current ({directory})")
        return 0
    os.chdir(ROOT)  # mypy reads [tool.mypy] from pyproject.toml; mypyc names modules from here
    digests = build.source_digests()
    started, cpu = time.perf_counter(), time.process_time()
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=directory.name + ".", dir=directory.parent))
    try:
        compile_modules(scratch)
        if build.source_digests() != digests:
            print("compiled build: sources changed during the build; run it again", file=sys.stderr)
            return 1
        from mypy.version import __version__ as mypy_version

        manifest = {"sources": digests, "python": sys.version, "mypy": mypy_version}
        (scratch / build.MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        shutil.rmtree(directory, ignore_errors=True)
        scratch.rename(directory)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"compiled build: {len(digests)} modules into {directory} in "
        f"{time.perf_counter() - started:.0f} s wall, {time.process_time() - cpu:.0f} CPU s "
        f"(mypyc) + {children.ru_utime + children.ru_stime:.0f} CPU s (C compiler)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
