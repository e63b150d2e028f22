"""`segments` subcommands for exports: manage them, run one, and the exports of a segment.

Secrets of destinations are never printed: the API masks them ("***").
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from . import render
from .errors import OperatorError, UsageError
from .http import ApiClient
from .inputs import Add, Command, load_definition, quoted

__all__ = ["register"]


def _load(path: str) -> dict[str, Any]:

    value = load_definition(path)
    if isinstance(value.get("export"), dict):
        value = value["export"]
    return value


def _where(export: dict[str, Any]) -> str:
    d = export.get("destination") or {}
    target = d.get("topic") or d.get("directory") or d.get("url") or ""
    return f"{d.get('type', '?')}:{target}"


def _schedule(export: dict[str, Any]) -> str:
    s = export.get("schedule")
    return f"{s.get('cron')} ({s.get('timezone', 'UTC')})" if s else "-"


def _rows(exports: list[dict[str, Any]]) -> str:
    rows = [[e["id"], e["name"], _where(e), ",".join(e["segments"]), _schedule(e)] for e in exports]
    return render.table(rows, ["ID", "NAME", "DESTINATION", "SEGMENTS", "SCHEDULE"])


def _list(api: ApiClient, args: argparse.Namespace) -> Any:
    body = api.request("GET", "/exports")
    if args.json:
        return body
    print(_rows(body["exports"]) if body["exports"] else "no exports")
    return None


def _show(api: ApiClient, args: argparse.Namespace) -> Any:
    e = api.request("GET", f"/exports/{quoted(args.id)}")
    if args.json:
        return e
    print(f"{e['id']}: {e['name']}")
    print(f"segments:    {', '.join(e['segments'])}")
    attributes = e.get("attributes")
    print(f"attributes:  {', '.join(attributes) if attributes is not None else 'all'}")
    following = f", next {render.when(e['next_at'])}" if e.get("next_at") else ""
    print(f"schedule:    {_schedule(e)}{following}")
    print(f"modified:    {render.when(e['modified_at'])}")
    last = e.get("last_run")
    if last:
        print(f"last run:    {last['status']} (job {last['job_id']})")
    print("destination:")
    print("  " + json.dumps(e["destination"], indent=2).replace("\n", "\n  "))
    return None


def _changed(result: dict[str, Any], args: argparse.Namespace, verb: str) -> Any:
    if args.json:
        return result
    e = result["export"]
    print(f"{verb} export {e['id']!r} ({_where(e)}; segments {', '.join(e['segments'])})")
    return None


def _create(api: ApiClient, args: argparse.Namespace) -> Any:
    result = api.request("POST", "/exports", {"export": _load(args.file)})
    return _changed(result, args, "created")


def _update(api: ApiClient, args: argparse.Namespace) -> Any:
    export = _load(args.file)
    if not isinstance(export.get("id"), str):
        raise UsageError(f"{args.file}: the definition needs its 'id' to update an export")
    result = api.request("PUT", f"/exports/{quoted(export['id'])}", {"export": export})
    return _changed(result, args, "updated")


def _duplicate(api: ApiClient, args: argparse.Namespace) -> Any:
    body: dict[str, Any] = {"new_id": args.new_id}
    if args.name is not None:
        body["name"] = args.name
    result = api.request("POST", f"/exports/{quoted(args.id)}/duplicate", body)
    return _changed(result, args, f"copied {args.id!r} to")


def _remove(api: ApiClient, args: argparse.Namespace) -> Any:
    result = api.request("DELETE", f"/exports/{quoted(args.id)}")
    if args.json:
        return result
    print(f"removed export {args.id!r}")
    return None


def _run(api: ApiClient, args: argparse.Namespace) -> Any:
    query = {"wait": "1"} if args.wait else None
    result = api.request("POST", f"/exports/{quoted(args.id)}/run", query=query)
    if args.json:
        return result
    job = result["job"]
    if not args.wait:
        print(f"export {args.id!r} started: job {job['job_id']} ({job['status']})")
        return None
    print(f"export {args.id!r}: {job['status']} (job {job['job_id']})")
    for segment_id, task in result["tasks"].items():
        line = f"  {segment_id}: {task['status']}"
        if task.get("count") is not None:
            line += f", {task['count']} profiles"
        if task.get("processing_ms") is not None:
            line += f" in {task['processing_ms']} ms"
        print(line)
        notes = task["warnings"] if task["status"] != "Successful" else []
        for message in task["errors"] or notes:
            print(f"    {message}")
    if job["status"] == "Failure":
        raise OperatorError(f"export {args.id!r} failed")
    return None


def _for_segment(api: ApiClient, args: argparse.Namespace) -> Any:
    chosen = [o for o in (args.add, args.remove, args.new) if o]
    if len(chosen) > 1:
        raise UsageError("exports-for takes one of --add, --remove or --new")
    segment = quoted(args.segment)
    result: Any = None
    if args.add:
        body = {"segment_id": args.segment}
        result = api.request("POST", f"/exports/{quoted(args.add)}/segments", body)
        message = f"added {args.segment!r} to export {args.add!r}"
    elif args.remove:
        result = api.request("DELETE", f"/exports/{quoted(args.remove)}/segments/{segment}")
        message = f"removed {args.segment!r} from export {args.remove!r}"
    elif args.new:
        if not args.file:
            raise UsageError("exports-for --new needs -f FILE (the export definition)")
        export = _load(args.file)
        segments = list(export.get("segments") or [])
        export["segments"] = segments + ([args.segment] if args.segment not in segments else [])
        result = api.request("POST", "/exports", {"export": export})
        message = f"created export {result['export']['id']!r} containing {args.segment!r}"
    if result is not None:
        if args.json:
            return result
        changed = result.get("changed", True)
        print(message if changed else f"export {args.add!r} already contains {args.segment!r}")
        return None
    body = api.request("GET", f"/segments/{segment}/exports")
    if args.json:
        return body
    for title, key in (("containing", "containing"), ("not containing", "not_containing")):
        print(f"exports {title} {args.segment!r}:")
        print("  " + (_rows(body[key]).replace("\n", "\n  ") if body[key] else "none"))
    return None


def register(add: Add, common: argparse.ArgumentParser) -> None:
    """Add the subcommands through the CLI's `add(name, run, help)`."""
    p = add("exports", _list, "exports: list, show, create, update, duplicate, remove")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        q = sub.add_parser(name, parents=[common], help=help, description=help)
        q.set_defaults(run=run)
        return q

    action("list", _list, "every export (secrets masked)")
    action("show", _show, "one export and its last run").add_argument("id")
    definition = "export definition file (.json, .yaml, - = stdin)"
    action("create", _create, "create an export (it does not run)").add_argument(
        "-f", "--file", required=True, help=definition
    )
    action("update", _update, "replace an export (the file's id names it)").add_argument(
        "-f", "--file", required=True, help=definition
    )
    q = action("duplicate", _duplicate, "copy an export under a new id")
    q.add_argument("id")
    q.add_argument("new_id")
    q.add_argument("--name", help="the copy's name (default: '<name> (copy)')")
    action("remove", _remove, "remove an export").add_argument("id")
    p = add("export", _run, "run exports")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = action("run", _run, "run an export now, as a job")
    q.add_argument("id", metavar="EXPORT")
    q.add_argument("--wait", action="store_true", help="wait for the job and show its tasks")
    p = add("exports-for", _for_segment, "the exports of a segment; add it, remove it, or new")
    p.add_argument("segment", metavar="SEGMENT")
    p.add_argument("--add", metavar="EXPORT", help="add the segment to this export")
    p.add_argument("--remove", metavar="EXPORT", help="remove the segment from this export")
    p.add_argument("--new", action="store_true", help="create an export (-f) containing it")
    p.add_argument("-f", "--file", help="with --new: the export definition (.json, .yaml)")
