"""Export definitions: which segments go where, validated once into frozen values.

A definition is JSON::

    {"id": "crm-nightly", "name": "CRM nightly", "segments": ["vip-de"],
     "attributes": ["email", "tier"],            # or null: every attribute the members have
     "schedule": {...} | null,                    # opaque here (the scheduler reads it)
     "destination": {"type": "kafka", "topic": "crm.segments", "max_profiles": 100000}}

Destination types: ``kafka`` (topic), ``files`` (directory, format csv|jsonl, bom) and
``webhook`` (url, secret, batch_size, retries, backoff_s); each takes an optional
``max_profiles``. What a definition may name on this installation (the export root, the
project's own topics) is checked by `streams.exports.policy`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn
from urllib.parse import urlsplit

from segment_rules.parse import SLUG_RE

from .._suggest import did_you_mean
from .errors import ExportError
from .urls import MASK, mask_url

__all__ = [
    "Destination",
    "ExportDefinition",
    "ExportError",
    "FilesDestination",
    "KafkaDestination",
    "WebhookDestination",
    "export_to_json",
    "parse_export",
]

MAX_SEGMENTS: Final = 100
MAX_ATTRIBUTES: Final = 500
MAX_BATCH: Final = 10_000
MAX_RETRIES: Final = 20
MAX_BACKOFF_S: Final = 60.0
_TOPIC_RE: Final = re.compile(r"[A-Za-z0-9._-]{1,249}")
_MAX_NAME: Final = 200


@dataclass(frozen=True)
class KafkaDestination:
    """A full snapshot per run on `topic`: begin marker, one message per member, end marker."""

    topic: str
    max_profiles: int | None = None


@dataclass(frozen=True)
class FilesDestination:
    """A data file and a manifest per run under `directory`/<export>/<segment>/<time>/."""

    directory: str
    format: Literal["csv", "jsonl"] = "csv"
    max_profiles: int | None = None
    bom: bool = False
    """CSV only: start the file with a UTF-8 byte order mark (for spreadsheet programs)."""


@dataclass(frozen=True)
class WebhookDestination:
    """Signed JSON POSTs of the changes since the last successful delivery."""

    url: str
    secret: str
    batch_size: int = 500
    max_profiles: int | None = None
    retries: int = 5
    backoff_s: float = 0.5

    def __repr__(self) -> str:  # never print the secret, nor credentials in the URL
        return (
            f"WebhookDestination(url={mask_url(self.url)!r}, secret={MASK!r}"
            f", batch_size={self.batch_size}"
            f", max_profiles={self.max_profiles}, retries={self.retries}"
            f", backoff_s={self.backoff_s})"
        )


Destination = KafkaDestination | FilesDestination | WebhookDestination


@dataclass(frozen=True)
class ExportDefinition:
    id: str
    name: str
    destination: Destination
    segments: tuple[str, ...]
    attributes: tuple[str, ...] | None
    schedule: dict[str, Any] | None


# -- parsing ---------------------------------------------------------------------------------
_TOP: Final = ("id", "name", "destination", "segments", "attributes", "schedule")
_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "kafka": ("type", "topic", "max_profiles"),
    "files": ("type", "directory", "format", "max_profiles", "bom"),
    "webhook": ("type", "url", "secret", "batch_size", "max_profiles", "retries", "backoff_s"),
}


def _fail(code: str, message: str, path: str) -> NoReturn:
    raise ExportError(code, message, path)


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _map(value: object, path: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _fail("wrong_type", f"expected an object at {path or 'the top'}, got {_kind(value)}", path)
    for key in value:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            _fail(
                "unknown_field",
                f"unknown field {key!r} at {where}{did_you_mean(key, allowed)}",
                where,
            )
    return value


def _required(obj: Mapping[str, Any], key: str, path: str) -> Any:
    if key not in obj or obj[key] is None:
        _fail("missing_field", f"missing field {key!r} at {path}", path)
    return obj[key]


def _string(value: object, path: str, what: str) -> str:
    if not isinstance(value, str):
        _fail("wrong_type", f"expected {what} at {path}, got {_kind(value)} {value!r}", path)
    if not value.strip():
        _fail("invalid_value", f"expected {what} at {path}, got an empty string", path)
    return value


def _slug(value: object, path: str, what: str) -> str:
    text = _string(value, path, what)
    if not SLUG_RE.fullmatch(text):
        _fail(
            "invalid_value",
            f"invalid {what} {text!r} at {path}; expected 1-64 characters of lowercase letters, "
            "digits, '_' or '-', starting with a letter or digit, e.g. 'crm-nightly'",
            path,
        )
    return text


def _int(obj: Mapping[str, Any], key: str, path: str, default: int, low: int, high: int) -> int:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        _fail("wrong_type", f"expected an integer at {path}, got {_kind(value)} {value!r}", path)
    if not low <= value <= high:
        _fail("invalid_value", f"{value!r} at {path} is out of range; expected {low}..{high}", path)
    return value


def _limit(obj: Mapping[str, Any], path: str) -> int | None:
    if obj.get("max_profiles") is None:
        return None
    return _int(obj, "max_profiles", f"{path}.max_profiles", 0, 1, 2**53)


def _kafka(obj: Mapping[str, Any], path: str) -> KafkaDestination:
    topic = _string(_required(obj, "topic", f"{path}.topic"), f"{path}.topic", "a topic name")
    if not _TOPIC_RE.fullmatch(topic) or topic in (".", ".."):
        _fail(
            "invalid_value",
            f"invalid topic name {topic!r} at {path}.topic; expected 1-249 characters of "
            "letters, digits, '.', '_' or '-'",
            f"{path}.topic",
        )
    return KafkaDestination(topic, _limit(obj, path))


def _files(obj: Mapping[str, Any], path: str) -> FilesDestination:
    where = f"{path}.directory"
    directory = _string(_required(obj, "directory", where), where, "a directory path")
    fmt = obj.get("format", "csv")
    if fmt not in ("csv", "jsonl"):
        _fail(
            "invalid_value",
            f"unknown format {fmt!r} at {path}.format; expected 'csv' or 'jsonl'"
            f"{did_you_mean(fmt, ('csv', 'jsonl'))}",
            f"{path}.format",
        )
    bom = obj.get("bom", False)
    if not isinstance(bom, bool):
        _fail(
            "wrong_type", f"expected true or false at {path}.bom, got {_kind(bom)}", f"{path}.bom"
        )
    if bom and fmt != "csv":
        _fail(
            "invalid_value",
            f"bom at {path}.bom applies to CSV files only (format is {fmt!r}); remove it",
            f"{path}.bom",
        )
    return FilesDestination(directory, fmt, _limit(obj, path), bom)


def _webhook(obj: Mapping[str, Any], path: str) -> WebhookDestination:
    url = _string(_required(obj, "url", f"{path}.url"), f"{path}.url", "an http(s) URL")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _fail(
            "invalid_value",
            f"invalid URL {url!r} at {path}.url; expected http:// or https:// and a host, "
            "e.g. 'https://crm.example.com/hooks/segments'",
            f"{path}.url",
        )
    where = f"{path}.secret"
    secret = obj.get("secret")
    if secret is None:
        _fail("missing_field", f"missing field 'secret' at {where} (the HMAC signing key)", where)
    if not isinstance(secret, str) or len(secret) < 8:
        # never echo the secret itself
        _fail("invalid_value", f"expected a string of at least 8 characters at {where}", where)
    backoff = obj.get("backoff_s", 0.5)
    where = f"{path}.backoff_s"
    if isinstance(backoff, bool) or not isinstance(backoff, int | float):
        _fail(
            "wrong_type", f"expected a number at {where}, got {_kind(backoff)} {backoff!r}", where
        )
    if not math.isfinite(backoff) or not 0 <= backoff <= MAX_BACKOFF_S:
        _fail("invalid_value", f"{backoff!r} at {where} is out of range; expected 0..60", where)
    return WebhookDestination(
        url=url,
        secret=secret,
        batch_size=_int(obj, "batch_size", f"{path}.batch_size", 500, 1, MAX_BATCH),
        max_profiles=_limit(obj, path),
        retries=_int(obj, "retries", f"{path}.retries", 5, 0, MAX_RETRIES),
        backoff_s=float(backoff),
    )


def _destination(value: object, path: str) -> Destination:
    if not isinstance(value, Mapping):
        _fail("wrong_type", f"expected an object at {path}, got {_kind(value)}", path)
    kind = _required(value, "type", f"{path}.type")
    if kind not in _FIELDS:
        _fail(
            "invalid_value",
            f"unknown destination type {kind!r} at {path}.type; expected one of "
            f"{', '.join(map(repr, _FIELDS))}{did_you_mean(kind, _FIELDS)}",
            f"{path}.type",
        )
    obj = _map(value, path, _FIELDS[kind])
    if kind == "kafka":
        return _kafka(obj, path)
    if kind == "files":
        return _files(obj, path)
    return _webhook(obj, path)


def _names(value: object, path: str, what: str, limit: int, slug: bool) -> tuple[str, ...]:
    if not isinstance(value, list):
        _fail("wrong_type", f"expected a list of {what}s at {path}, got {_kind(value)}", path)
    if not value:
        _fail("invalid_value", f"expected at least one {what} at {path}, got []", path)
    if len(value) > limit:
        _fail("limit_exceeded", f"{len(value)} {what}s at {path}; at most {limit}", path)
    names: list[str] = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        name = _slug(item, where, what) if slug else _string(item, where, what)
        if name in names:
            _fail("invalid_value", f"duplicate {what} {name!r} at {where}", where)
        if not slug and name == "customer_id":
            _fail("invalid_value", f"'customer_id' at {where} is always the first column", where)
        names.append(name)
    return tuple(names)


def parse_export(obj: Mapping[str, Any]) -> ExportDefinition:
    """Validate a JSON export definition; raises `ExportError` with the path of the problem."""
    top = _map(obj, "", _TOP)
    export_id = _slug(_required(top, "id", "id"), "id", "export id")
    name = _string(_required(top, "name", "name"), "name", "a name")
    if len(name) > _MAX_NAME:
        _fail("invalid_value", f"name at name is {len(name)} characters; at most 200", "name")
    destination = _destination(_required(top, "destination", "destination"), "destination")
    segments = _names(
        _required(top, "segments", "segments"), "segments", "segment id", MAX_SEGMENTS, slug=True
    )
    raw_attrs = top.get("attributes")
    attributes = (
        None
        if raw_attrs is None
        else _names(raw_attrs, "attributes", "attribute name", MAX_ATTRIBUTES, slug=False)
    )
    schedule = top.get("schedule")
    if schedule is not None and not isinstance(schedule, Mapping):
        _fail(
            "wrong_type",
            f"expected an object or null at schedule, got {_kind(schedule)}",
            "schedule",
        )
    return ExportDefinition(
        id=export_id,
        name=name,
        destination=destination,
        segments=segments,
        attributes=attributes,
        schedule=dict(schedule) if schedule is not None else None,
    )


def _destination_json(destination: Destination, reveal_secrets: bool) -> dict[str, Any]:
    if isinstance(destination, KafkaDestination):
        out: dict[str, Any] = {"type": "kafka", "topic": destination.topic}
    elif isinstance(destination, FilesDestination):
        out = {"type": "files", "directory": destination.directory, "format": destination.format}
        if destination.bom:
            out["bom"] = True
    else:
        out = {
            "type": "webhook",
            "url": destination.url if reveal_secrets else mask_url(destination.url),
            "secret": destination.secret if reveal_secrets else MASK,
            "batch_size": destination.batch_size,
            "retries": destination.retries,
            "backoff_s": destination.backoff_s,
        }
    out["max_profiles"] = destination.max_profiles
    return out


def export_to_json(defn: ExportDefinition, reveal_secrets: bool = False) -> dict[str, Any]:
    """The definition as JSON; a webhook secret shows as ``"***"`` and the URL's credentials
    are masked (`mask_url`) unless `reveal_secrets` (only for storing the definition, never
    for an API reply or CLI output)."""
    return {
        "id": defn.id,
        "name": defn.name,
        "destination": _destination_json(defn.destination, reveal_secrets),
        "segments": list(defn.segments),
        "attributes": list(defn.attributes) if defn.attributes is not None else None,
        "schedule": defn.schedule,
    }
