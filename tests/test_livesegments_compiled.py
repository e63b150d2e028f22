"""The compiled build is used only when it matches the source, and says which one runs."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import livesegments_compiled
from livesegments_compiled import (
    BUILD,
    MANIFEST,
    MODULES,
    REBUILD,
    CompiledBuildError,
    build_dir,
    choose,
    source_digests,
)

ROOT = Path(livesegments_compiled.__file__).resolve().parent
SUFFIX = ".cpython-311-x86_64-linux-gnu.so"


def _source(root: Path, name: str) -> Path:
    return root / (name.replace(".", "/") + ".py")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A source tree with a current (fake) build: sources, manifest and extension files."""
    directory = build_dir(tmp_path)
    for name in MODULES:
        _source(tmp_path, name).parent.mkdir(parents=True, exist_ok=True)
        _source(tmp_path, name).write_text(f"# {name}\n")
        extension = directory.joinpath(*name.split(".")).with_name(name.split(".")[-1] + SUFFIX)
        extension.parent.mkdir(parents=True, exist_ok=True)
        extension.write_bytes(b"")
    (directory / ("0123abcd__mypyc" + SUFFIX)).write_bytes(b"")
    manifest = {"sources": source_digests(tmp_path)}
    (directory / MANIFEST).write_text(json.dumps(manifest))
    return tmp_path


def test_a_current_build_is_chosen_with_every_module_and_its_library(tree: Path) -> None:
    for mode in ("auto", "1", "", " AUTO "):
        build, paths = choose(mode, tree)
        assert build.compiled, mode
        assert set(paths) == {*MODULES, "0123abcd__mypyc"}
        assert paths["segment_rules.history"].parent == build_dir(tree) / "segment_rules"


def test_an_edited_source_sets_the_whole_build_aside_and_says_so(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _source(tree, "segment_rules.history").write_text("# edited\n")
    build, paths = choose("auto", tree)
    assert not build.compiled and paths == {}
    err = capsys.readouterr().err
    assert "running the pure modules" in err
    assert "segment_rules.history changed" in err and REBUILD in err
    assert "segment_rules.compile" not in err


def test_an_edited_source_is_an_error_naming_it_when_the_build_is_required(tree: Path) -> None:
    _source(tree, "streams.engine.machine").write_text("# edited\n")
    with pytest.raises(CompiledBuildError) as caught:
        choose("1", tree)
    assert "streams.engine.machine changed since it was built" in caught.value.message
    assert REBUILD in caught.value.message
    assert caught.value.code == "compiled_build"


def test_no_build_runs_the_pure_modules_quietly_or_is_an_error_when_required(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, paths = choose("auto", tmp_path)
    assert not build.compiled and paths == {}
    assert capsys.readouterr().err == ""
    with pytest.raises(CompiledBuildError, match=r"no compiled build in .*build_compiled\.py"):
        choose("1", tmp_path)


def test_a_build_of_other_modules_or_a_missing_extension_is_not_used(tree: Path) -> None:
    directory = build_dir(tree)
    next(directory.joinpath("state").glob("profile.*.so")).unlink()
    with pytest.raises(CompiledBuildError, match=r"incomplete \(no extension for state.profile"):
        choose("1", tree)
    manifest = json.loads((directory / MANIFEST).read_text())
    del manifest["sources"]["state.profile"]
    (directory / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CompiledBuildError, match="other modules than MODULES"):
        choose("1", tree)
    (directory / MANIFEST).write_text("{not json")
    with pytest.raises(CompiledBuildError, match="unreadable manifest"):
        choose("1", tree)


def test_ls_compiled_0_runs_the_pure_modules_even_beside_a_current_build(tree: Path) -> None:
    build, paths = choose("0", tree)
    assert not build.compiled and paths == {}
    assert build.describe() == "pure Python: LS_COMPILED=0"


def test_an_unknown_switch_is_an_error_naming_the_variable(tree: Path) -> None:
    with pytest.raises(CompiledBuildError, match="LS_COMPILED='yes': expected 0") as caught:
        choose("yes", tree)
    assert caught.value.path == "LS_COMPILED"


def test_this_process_runs_the_build_it_reports() -> None:
    """Every module of the build is an extension exactly when `BUILD` says compiled (test.sh
    sets LS_COMPILED=1: there, the suite must be running the compiled build)."""
    files = {name: str(importlib.import_module(name).__file__) for name in MODULES}
    extension = {name: path.endswith(".so") for name, path in files.items()}
    assert set(extension.values()) == {BUILD.compiled}, files
    if os.environ.get("LS_COMPILED") == "1":
        assert BUILD.compiled


def _copy_tree(target: Path) -> Path:
    """The packages of the build, its loader and the built extensions, copied to `target`."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("segment_rules", "state", "streams"):
        shutil.copytree(ROOT / package, target / package, ignore=skip)
    for module in ("livesegments_error.py", "livesegments_compiled.py"):
        shutil.copy2(ROOT / module, target / module)
    shutil.copytree(build_dir(ROOT), build_dir(target))
    return target


def _import(root: Path, mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LS_COMPILED": mode, "PYTHONDONTWRITEBYTECODE": "1"}
    code = (
        "import streams.engine.machine as m, segment_rules.history as h\n"
        "print(m.__file__)\nprint(h.__file__)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True
    )


def test_an_edited_source_never_runs_the_stale_extension(tmp_path: Path) -> None:
    """The real build, in a copy of the tree: used while current; once a source is edited the
    edited source runs (auto) or the import fails naming it (LS_COMPILED=1)."""
    if livesegments_compiled.why_stale() is not None:
        if os.environ.get("LS_COMPILED") == "1":
            pytest.fail(f"LS_COMPILED=1: {livesegments_compiled.why_stale()}")
        pytest.skip(f"needs the compiled build ({REBUILD})")
    root = _copy_tree(tmp_path)
    current = _import(root, "1")
    assert current.returncode == 0, current.stderr
    for path in current.stdout.split():
        assert path.startswith(str(build_dir(root))) and path.endswith(".so"), current.stdout

    machine = root / "streams" / "engine" / "machine.py"
    machine.write_text(machine.read_text() + "\n# edited\n")
    edited = _import(root, "auto")
    assert edited.returncode == 0, edited.stderr
    # the whole build is set aside: its modules call each other natively
    assert edited.stdout.split() == [str(machine), str(root / "segment_rules" / "history.py")]
    assert "streams.engine.machine changed since it was built" in edited.stderr
    assert "segment_rules.history" not in edited.stderr  # only the edited one is named

    required = _import(root, "1")
    assert required.returncode != 0
    assert "CompiledBuildError" in required.stderr
    assert "streams.engine.machine changed since it was built" in required.stderr
    assert REBUILD in required.stderr
