"""Export definitions: validation errors with their paths; secrets never shown."""

from __future__ import annotations

from typing import Any

import pytest

from streams.exports import (
    ExportError,
    FilesDestination,
    KafkaDestination,
    WebhookDestination,
    export_to_json,
    parse_export,
)

SECRET = "s3cr3t-signing-key"


def _export(**destination: Any) -> dict[str, Any]:
    return {
        "id": "crm-nightly",
        "name": "CRM nightly",
        "segments": ["vip-de", "big-spenders"],
        "attributes": ["email", "tier"],
        "schedule": None,
        "destination": destination,
    }


def test_parses_each_destination_with_defaults() -> None:
    kafka = parse_export(_export(type="kafka", topic="crm.segments", max_profiles=1000))
    assert kafka.destination == KafkaDestination("crm.segments", 1000)
    assert kafka.segments == ("vip-de", "big-spenders")
    assert kafka.attributes == ("email", "tier")
    files = parse_export({**_export(type="files", directory="/data"), "attributes": None})
    assert files.destination == FilesDestination("/data", "csv", None)
    assert files.attributes is None
    hook = parse_export(_export(type="webhook", url="https://crm.example.com/h", secret=SECRET))
    assert hook.destination == WebhookDestination("https://crm.example.com/h", SECRET)
    assert (hook.destination.batch_size, hook.destination.retries) == (500, 5)


@pytest.mark.parametrize(
    ("change", "code", "path"),
    [
        ({"id": "Bad Id"}, "invalid_value", "id"),
        ({"name": None}, "missing_field", "name"),
        ({"segments": []}, "invalid_value", "segments"),
        ({"segments": ["ok", 3]}, "wrong_type", "segments[1]"),
        ({"segments": ["a", "a"]}, "invalid_value", "segments[1]"),
        ({"attributes": ["customer_id"]}, "invalid_value", "attributes[0]"),
        ({"schedule": "daily"}, "wrong_type", "schedule"),
        ({"destinaton": {}}, "unknown_field", "destinaton"),
        ({"destination": {"type": "ftp"}}, "invalid_value", "destination.type"),
        ({"destination": {"type": "kafka"}}, "missing_field", "destination.topic"),
        ({"destination": {"type": "kafka", "topic": "a b"}}, "invalid_value", "destination.topic"),
        (
            {"destination": {"type": "kafka", "topic": "t", "max_profiles": 0}},
            "invalid_value",
            "destination.max_profiles",
        ),
        (
            {"destination": {"type": "files", "directory": "/d", "format": "xml"}},
            "invalid_value",
            "destination.format",
        ),
        (
            {"destination": {"type": "files", "directory": "d", "format": "jsonl", "bom": True}},
            "invalid_value",
            "destination.bom",
        ),
        (
            {"destination": {"type": "files", "directory": "d", "bom": "yes"}},
            "wrong_type",
            "destination.bom",
        ),
        (
            {"destination": {"type": "webhook", "url": "ftp://x", "secret": SECRET}},
            "invalid_value",
            "destination.url",
        ),
        (
            {
                "destination": {
                    "type": "webhook",
                    "url": "http://x",
                    "secret": SECRET,
                    "batch_size": "10",
                }
            },
            "wrong_type",
            "destination.batch_size",
        ),
        (
            {
                "destination": {
                    "type": "webhook",
                    "url": "http://x",
                    "secret": SECRET,
                    "retries": 99,
                }
            },
            "invalid_value",
            "destination.retries",
        ),
        (
            {"destination": {"type": "webhook", "url": "http://x", "secrt": SECRET}},
            "unknown_field",
            "destination.secrt",
        ),
    ],
)
def test_invalid_definitions_name_the_path(change: dict[str, Any], code: str, path: str) -> None:
    raw = {**_export(type="kafka", topic="t"), **change}
    with pytest.raises(ExportError) as info:
        parse_export(raw)
    assert (info.value.code, info.value.path) == (code, path)
    assert path in info.value.message


def test_unknown_field_suggests_the_spelling() -> None:
    raw = _export(type="webhook", url="http://x", secrt=SECRET)
    with pytest.raises(ExportError, match="did you mean 'secret'"):
        parse_export(raw)


def test_secrets_are_masked_unless_revealed() -> None:
    defn = parse_export(_export(type="webhook", url="http://h.example/x", secret=SECRET))
    shown = export_to_json(defn)
    assert shown["destination"]["secret"] == "***"
    assert SECRET not in repr(shown) and SECRET not in repr(defn) and SECRET not in str(defn)
    stored = export_to_json(defn, reveal_secrets=True)
    assert stored["destination"]["secret"] == SECRET
    assert parse_export(stored) == defn  # round trip


def test_a_bad_secret_is_not_echoed() -> None:
    with pytest.raises(ExportError) as info:
        parse_export(_export(type="webhook", url="http://h/x", secret="short"))
    assert info.value.path == "destination.secret"
    assert "short" not in info.value.message


def test_credentials_in_the_url_are_masked_unless_revealed() -> None:
    url = "https://bob:pw-1234@h.example/x?token=tok-5678"
    defn = parse_export(_export(type="webhook", url=url, secret=SECRET))
    shown = export_to_json(defn)
    assert shown["destination"]["url"] == "https://***@h.example/x?token=***"
    assert "pw-1234" not in repr(defn) and "tok-5678" not in repr(defn)
    assert export_to_json(defn, reveal_secrets=True)["destination"]["url"] == url


def test_bom_is_kept_for_csv_files() -> None:
    defn = parse_export(_export(type="files", directory="crm", bom=True))
    assert defn.destination == FilesDestination("crm", "csv", None, bom=True)
    assert export_to_json(defn)["destination"]["bom"] is True
    assert parse_export(export_to_json(defn)) == defn
