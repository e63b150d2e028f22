"""Exports may not write outside the export root, nor to the project's own topics."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from streams.exports import ExportError, parse_export
from streams.exports.policy import ExportPolicy
from streams.settings import Settings
from streams.topics import export_runs_topic

SETTINGS = Settings(app_id="ls-app", export_root="/srv/exports")


def _export(destination: dict[str, Any]) -> Any:
    return parse_export({"id": "e", "name": "E", "segments": ["s"], "destination": destination})


@pytest.mark.parametrize(
    "topic",
    [
        SETTINGS.events_topic,
        SETTINGS.control_topic,
        SETTINGS.replies_topic,
        SETTINGS.membership_topic,
        SETTINGS.dlq_topic,
        export_runs_topic(SETTINGS),
        "ls-app-__assignor-__leader",  # faust's internal topics
        "__consumer_offsets",  # Kafka's
    ],
)
def test_own_topics_are_refused(topic: str) -> None:
    policy = ExportPolicy.from_settings(SETTINGS)
    with pytest.raises(ExportError) as caught:
        policy.check(_export({"type": "kafka", "topic": topic}))
    assert (caught.value.code, caught.value.path) == ("reserved_topic", "destination.topic")
    assert repr(topic) in caught.value.message


def test_other_topics_are_allowed() -> None:
    policy = ExportPolicy.from_settings(SETTINGS)
    policy.check(_export({"type": "kafka", "topic": "crm.segments"}))
    policy.check(_export({"type": "kafka", "topic": "segments.events-copy"}))


@pytest.mark.parametrize(
    ("directory", "parts"),
    [("crm", ("crm",)), ("/srv/exports/crm/daily", ("crm", "daily")), ("a/../b", ("b",))],
)
def test_folders_inside_the_root(directory: str, parts: tuple[str, ...]) -> None:
    policy = ExportPolicy("/srv/exports")
    assert policy.folder_parts(directory, "destination.directory") == parts


@pytest.mark.parametrize("directory", ["/var/exports", "../elsewhere", "/srv/exports/../etc", "/"])
def test_folders_outside_the_root_are_refused(directory: str) -> None:
    policy = ExportPolicy("/srv/exports")
    with pytest.raises(ExportError) as caught:
        policy.check(_export({"type": "files", "directory": directory}))
    assert (caught.value.code, caught.value.path) == (
        "outside_export_root",
        "destination.directory",
    )
    assert repr(directory) in caught.value.message and "'/srv/exports'" in caught.value.message
    assert "LS_EXPORT_ROOT" in caught.value.message


def test_symbolic_links_below_the_root_are_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "crm").symlink_to(outside)
    (root / "real").mkdir()
    (root / "real" / "inside").symlink_to(root / "real")
    policy = ExportPolicy(os.path.realpath(root))
    for directory in ("crm/daily", "real/inside"):
        with pytest.raises(ExportError, match="a symbolic link") as caught:
            policy.folder_parts(directory, "destination.directory")
        assert caught.value.code == "symlink_in_export_root"
        assert caught.value.path == "destination.directory"
    assert policy.folder_parts("real/daily", "d") == ("real", "daily")
