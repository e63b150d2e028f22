"""CLI fixtures: run `segments` in-process against a module's worker (its `world` fixture)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streams.operator.cli import main

from ..web.fixtures import TOKEN, ApiHarness

Run = Callable[..., tuple[int, str, str]]
"""run(*argv) -> (exit code, stdout, stderr)"""


@pytest.fixture
def run(
    world: ApiHarness, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Run:
    monkeypatch.setenv("LS_API_URL", world.url)
    monkeypatch.setenv("LS_API_TOKEN", TOKEN)

    def invoke(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke
