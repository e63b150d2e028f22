"""`segments` subcommands for the lifecycle: rename, duplicate, schedules, refresh schedules."""

from __future__ import annotations

import argparse
import time
from typing import Any

from . import render
from .errors import UsageError
from .http import ApiClient
from .inputs import Add, load_definition, parse_since, quoted

__all__ = ["print_schedules", "register"]


def parse_when(text: str) -> int | str:
    """'+90s' / '+10m' / '+2h' / '+1d' from now, epoch ms, or ISO-8601 (sent as is)."""

    text = text.strip()
    if text.startswith("+"):
        return int(time.time() * 1000) + parse_since(text[1:])
    if text.isdigit():
        return int(text)
    return text


def print_schedules(segment: dict[str, Any]) -> None:
    """The pending schedules and refresh schedules of `GET /segments/{id}` (for `show`)."""
    once = segment.get("schedules") or []
    if once:
        rows = [[s["schedule_id"], s["action"], render.when(s["at"])] for s in once]
        print(render.table(rows, ["SCHEDULE", "ACTION", "AT"]))
    for r in segment.get("refresh_schedules") or []:
        print(f"refresh {r['cron']!r} ({r['timezone']}), next {render.when(r['next_at'])}"
              f"  [{r['schedule_id']}]")  # fmt: skip


def _rename(api: ApiClient, args: argparse.Namespace) -> Any:
    result = api.request("POST", f"/segments/{quoted(args.id)}/rename", {"name": args.name})
    if args.json:
        return result
    if result.get("changed") is False:
        print(f"segment {args.id!r} is already named {args.name!r}")
    else:
        print(f"renamed segment {args.id!r} to {args.name!r}")
    return None


def _duplicate(api: ApiClient, args: argparse.Namespace) -> Any:

    body: dict[str, Any] = {"new_id": args.new_id}
    if args.name is not None:
        body["name"] = args.name
    if args.file is not None:
        body["segment"] = load_definition(args.file)
    result = api.request("POST", f"/segments/{quoted(args.id)}/duplicate", body)
    if args.json:
        return result
    copy = result["segment"]
    print(f"copied {args.id!r} to {copy['id']!r} ({copy['definition'].get('name')!r}, inactive)")
    return None


def _schedule(api: ApiClient, args: argparse.Namespace) -> Any:
    wanted = [(a, t) for a, t in (("activate", args.activate_at),
                                  ("deactivate", args.deactivate_at)) if t]  # fmt: skip
    if not wanted:
        raise UsageError("schedule needs --activate-at and/or --deactivate-at")
    results = []
    for action, when in wanted:
        body = {"action": action, "at": parse_when(when)}
        results.append(api.request("POST", f"/segments/{quoted(args.id)}/schedules", body))
    if args.json:
        return results
    for result in results:
        s = result["schedule"]
        print(f"scheduled {s['action']} of {s['segment_id']!r} at {render.when(s['at'])} "
              f"(schedule {s['schedule_id']})")  # fmt: skip
    return None


def _unschedule(api: ApiClient, args: argparse.Namespace) -> Any:
    result = api.request("DELETE", f"/schedules/{quoted(args.schedule_id)}")
    if args.json:
        return result
    s = result["schedule"]
    print(f"canceled the {s['action']} of {s['segment_id']!r} at {render.when(s['at'])}")
    return None


def _refresh_add(api: ApiClient, args: argparse.Namespace) -> Any:
    if args.all == bool(args.ids):
        raise UsageError("refresh-schedule add needs segment ids or --all (not both)")
    body: dict[str, Any] = {"cron": args.cron, "timezone": args.tz}
    if args.all:
        body["all"] = True
    else:
        body["segment_ids"] = args.ids
    result = api.request("POST", "/refresh-schedules", body)
    if args.json:
        return result
    r = result["refresh_schedule"]
    print(f"refresh schedule {r['schedule_id']}: {r['cron']!r} in {r['timezone']}, "
          f"next run {render.when(r['next_at'])}")  # fmt: skip
    return None


def _refresh_list(api: ApiClient, args: argparse.Namespace) -> Any:
    body = api.request("GET", "/refresh-schedules")
    if args.json:
        return body
    rows = []
    for r in body["refresh_schedules"]:
        last = r.get("last_run") or {}
        skipped = f" (skipped {', '.join(last['skipped'])})" if last.get("skipped") else ""
        rows.append([
            r["schedule_id"], "all" if r["all"] else ",".join(r["segment_ids"]), r["cron"],
            r["timezone"], render.when(r["next_at"]), render.when(last.get("at")) + skipped,
        ])  # fmt: skip
    headers = ["ID", "SEGMENTS", "CRON", "TIME ZONE", "NEXT RUN", "LAST RUN"]
    print(render.table(rows, headers) if rows else "no refresh schedules")
    return None


def _refresh_remove(api: ApiClient, args: argparse.Namespace) -> Any:
    result = api.request("DELETE", f"/refresh-schedules/{quoted(args.schedule_id)}")
    if args.json:
        return result
    print(f"removed refresh schedule {args.schedule_id}")
    return None


def register(add: Add, common: argparse.ArgumentParser) -> None:
    """Add the subcommands through the CLI's `add(name, run, help)`."""
    p = add("rename", _rename, "change a segment's display name (its id stays)")
    p.add_argument("id")
    p.add_argument("name")
    p = add("duplicate", _duplicate, "copy a segment under a new id (inactive)")
    p.add_argument("id")
    p.add_argument("new_id")
    p.add_argument("--name", help="the copy's name (default: '<name> (copy)')")
    p.add_argument("-f", "--file", help="overrides: top-level definition fields (.json/.yaml)")
    p = add("schedule", _schedule, "activate and/or deactivate a segment at a future time")
    p.add_argument("id")
    when = "ISO-8601 (UTC if no offset), epoch ms, or +10m / +2h / +1d from now"
    p.add_argument("--activate-at", metavar="T", help=when)
    p.add_argument("--deactivate-at", metavar="T", help=when)
    p = add("unschedule", _unschedule, "cancel a pending schedule")
    p.add_argument("schedule_id")
    p = add("refresh-schedule", _refresh_list, "recurring refreshes: add, list, remove")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = sub.add_parser("add", parents=[common], help="refresh at every time of a cron")
    q.set_defaults(run=_refresh_add)
    q.add_argument("ids", nargs="*", metavar="ID")
    q.add_argument("--all", action="store_true", help="every segment (inactive ones skipped)")
    q.add_argument("--cron", required=True, help='5 fields, e.g. "0 6,12,18 * * *"')
    q.add_argument("--tz", default="UTC", help="IANA time zone, e.g. Europe/Berlin (UTC)")
    q = sub.add_parser("list", parents=[common], help="every refresh schedule")
    q.set_defaults(run=_refresh_list)
    q = sub.add_parser("remove", parents=[common], help="remove a refresh schedule")
    q.set_defaults(run=_refresh_remove)
    q.add_argument("schedule_id")
