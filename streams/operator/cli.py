"""`segments`: list, inspect, change and size segments through a worker's HTTP API.

Exit codes: 0 success, 1 the API (or the connection to it) failed, 2 bad command line or
input file. `--json` prints the API's answer as JSON for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from . import exports as exports_cli
from . import insights as insights_cli
from . import jobs, render
from . import schedules as schedules_cli
from .errors import ApiFailure, OperatorError, UsageError
from .http import DEFAULT_URL, ApiClient
from .inputs import Command, load_definition, parse_since, parse_value, quoted

__all__ = ["main"]


# -- commands -----------------------------------------------------------------------------
def _list(api: ApiClient, args: argparse.Namespace) -> Any:
    body = api.request("GET", "/segments", query={"tag": args.tag, "name": args.name})
    if args.json:
        return body
    rows = [
        [s["id"], s["name"], s["type"], s["state"], s["members"], s["tags"],
         render.when(s["modified_at"]), render.when(s["last_refresh"])]
        for s in body["segments"]
    ]  # fmt: skip
    headers = ["ID", "NAME", "TYPE", "STATE", "MEMBERS", "TAGS", "MODIFIED", "LAST REFRESH"]
    print(render.table(rows, headers) if rows else "no segments")
    return None


def _show(api: ApiClient, args: argparse.Namespace) -> Any:
    s = api.request("GET", f"/segments/{quoted(args.id)}")
    if args.json:
        return s
    print(f"{s['id']}: {s['name']}  ({s['type']}, {s['state']}, version {s['version']})")
    if s.get("description"):
        print(f"  {s['description']}")
    print(f"members:      {s['members']}")
    print(f"tags:         {render.cell(s['tags'])}")
    print(f"created:      {render.when(s['created_at'])}")
    print(f"modified:     {render.when(s['modified_at'])}")
    print(f"last refresh: {render.when(s['last_refresh'])}")
    print("definition:")
    print("  " + json.dumps(s["definition"], indent=2).replace("\n", "\n  "))
    schedules_cli.print_schedules(s)
    if s["jobs"]:
        rows = [
            [j["command"], render.when(j["created_at"]), render.when(j["finished_at"]),
             f"{j['partitions_done']}/{j['partitions']}", j["evaluated"], j["entered"], j["exited"]]
            for j in s["jobs"]
        ]  # fmt: skip
        headers = ["JOB", "STARTED", "FINISHED", "PARTS", "EVALUATED", "ENTERED", "EXITED"]
        print(render.table(rows, headers))
    return None


def _members(api: ApiClient, args: argparse.Namespace) -> Any:
    body = api.request("GET", f"/segments/{quoted(args.id)}/members", query={"limit": args.limit})
    if args.json:
        return body
    fields = body["fields"]
    scored = ["SCORE", "BAND"] if any("score" in m for m in body["members"]) else []
    rows = [
        [m["customer_id"], *([m["score"], m["band"]] if scored else []),
         *(m["attributes"].get(f) for f in fields)]
        for m in body["members"]
    ]  # fmt: skip
    print(render.table(rows, ["CUSTOMER", *scored, *fields]) if rows else "no members")
    print(f"({len(rows)} shown of {body['total']})")
    return None


def _download(api: ApiClient, args: argparse.Namespace) -> Any:
    destination = Path(args.output)
    query = "?bom=1" if args.bom else ""
    size = api.download(f"/segments/{quoted(args.id)}/members.csv{query}", destination)
    with open(destination, "rb") as f:
        rows = max(0, sum(1 for _ in f) - 1)
    if args.json:
        return {"file": str(destination), "bytes": size, "rows": rows}
    print(f"wrote {rows} members ({size} bytes) to {destination}")
    return None


def _trend(api: ApiClient, args: argparse.Namespace) -> Any:
    start = int(time.time() * 1000) - parse_since(args.since)
    body = api.request("GET", f"/segments/{quoted(args.id)}/trend", query={"from": start})
    if args.json:
        return body
    points = body["points"]
    if not points:
        print(f"{args.id}: no snapshots in the last {args.since} (one every "
              f"{body['interval_s']:g}s, taken by the leader worker)")  # fmt: skip
        return None
    counts = [p["members"] for p in points]
    print(f"{args.id}: {len(points)} snapshots since {render.when(points[0]['at'])}")
    print(f"  {render.sparkline(counts)}")
    print(f"  min {min(counts)}  max {max(counts)}  last {counts[-1]} "
          f"at {render.when(points[-1]['at'])}")  # fmt: skip
    return None


def _create(api: ApiClient, args: argparse.Namespace) -> Any:
    definition = load_definition(args.file)
    body = {"segment": definition, "activate": args.activate}
    return _changed(api.request("POST", "/segments", body), args, "created")


def _update(api: ApiClient, args: argparse.Namespace) -> Any:
    definition = load_definition(args.file)
    if not isinstance(definition.get("id"), str):
        raise UsageError(f"{args.file}: the definition needs its 'id' to update a segment")
    result = api.request("PUT", f"/segments/{quoted(definition['id'])}", {"segment": definition})
    return _changed(result, args, "updated")


def _changed(result: dict[str, Any], args: argparse.Namespace, verb: str) -> Any:
    if args.json:
        return result
    segment = result.get("segment", {})
    state = "active" if segment.get("active") else "inactive"
    line = f"{verb} segment {segment.get('id')!r} (version {segment.get('version')}, {state}"
    members = result.get("members", {})
    if segment.get("id") in members:
        line += f", {members[segment['id']]} members"
    print(line + ")")
    for warning in result.get("warnings", []):
        print(f"warning: {warning}")
    return None


def _simple(command: str) -> Command:
    def run(api: ApiClient, args: argparse.Namespace) -> Any:
        if command == "delete":
            result = api.request("DELETE", f"/segments/{quoted(args.id)}")
        else:
            result = api.request("POST", f"/segments/{quoted(args.id)}/{command}")
        if args.json:
            return result
        if command == "delete":
            print(f"deleted segment {args.id!r}")
        elif not result.get("changed", True):
            print(f"segment {args.id!r} was already {command}d")
        else:
            members = result.get("members", {}).get(args.id)
            extra = f" ({members} members)" if members is not None else ""
            print(f"{command}d segment {args.id!r}{extra}")
            for warning in result.get("warnings", []):
                print(f"warning: {warning}")
        return None

    return run


def _forget(api: ApiClient, args: argparse.Namespace) -> Any:
    result = api.request("POST", f"/customers/{quoted(args.customer_id)}/forget")
    if args.json:
        return result
    exited = sorted(result.get("exited_segments") or [])
    if result.get("erased"):
        left = f"; exited {', '.join(exited)}" if exited else ""
        print(f"forgot customer {args.customer_id!r}{left} (job {result['job']['job_id']})")
    else:
        print(f"no data held for customer {args.customer_id!r}; nothing to forget")
    return None


def _refresh(api: ApiClient, args: argparse.Namespace) -> Any:
    if args.all == bool(args.ids):
        raise UsageError("refresh needs segment ids or --all (not both)")
    body: dict[str, Any] = {"all": True} if args.all else {"segment_ids": args.ids}

    def send() -> Any:
        return api.request("POST", "/segments/refresh", body)

    segment = None if args.all else args.ids[0]
    result = jobs.run_with_progress(api, send, segment, sys.stderr) if args.wait else send()
    if args.json:
        return result
    members = result.get("members", {})
    tasks = result.get("tasks", {})
    for segment_id in result.get("segment_ids", []):
        status = tasks.get(segment_id, {}).get("status", "Successful")
        if status == "Successful":
            print(f"refreshed {segment_id!r}: {members.get(segment_id, '?')} members")
        else:
            print(f"{status.lower()} {segment_id!r}: {'; '.join(tasks[segment_id]['errors'])}")
    for segment_id in result.get("skipped_inactive", []):
        print(f"skipped {segment_id!r}: inactive")
    for segment_id, job_id in result.get("retraining", {}).items():  # expansion segments
        if not args.wait:
            print(f"re-training {segment_id!r}: job {job_id}")
            continue
        job = api.request("GET", f"/jobs/{quoted(job_id)}")
        done = jobs.analysis_result(api, job, True, sys.stderr)
        print(f"re-trained {segment_id!r} on {done['source']}'s {done['source_size']} members: "
              f"{done['size']} customers, ROC AUC {done['auc']:.3f} ({done['grade']})")  # fmt: skip
    jobs.check_tasks(result, "refresh")
    return None


def _print_estimate(result: dict[str, Any], what: str) -> None:
    share = 100 * result["estimate"] / result["customers"] if result["customers"] else 0.0
    print(f"{what}: {result['estimate']} of {result['customers']} customers "
          f"({share:.1f}%), computed in {result['elapsed_ms']} ms")  # fmt: skip


def _estimate(api: ApiClient, args: argparse.Namespace) -> Any:
    definition = load_definition(args.file)
    result = api.request("POST", "/segments/estimate", {"segment": definition})
    if args.json:
        return result
    _print_estimate(result, f"estimate of {definition.get('id')!r}")
    return None


def _quick(api: ApiClient, args: argparse.Namespace) -> Any:
    if (args.op is None) != (args.value is None) and args.op not in ("exists", "not_exists"):
        raise UsageError("quick: give --op and --value together (or neither)")
    stats = api.request("GET", f"/attributes/{quoted(args.attr)}/stats")
    result = definition = None
    if args.op is not None:
        where: dict[str, Any] = {"attr": args.attr, "op": args.op}
        if args.value is not None:
            where["value"] = parse_value(args.value, args.op)
        definition = {"id": "quick-estimate", "name": "Quick estimate", "rules": [{"where": where}]}
        result = api.request("POST", "/segments/estimate", {"segment": definition})
    if args.json:
        return {"stats": stats, "definition": definition, "estimate": result}
    print(f"{args.attr}: on {stats['present']} of {stats['customers']} customers ({stats['kind']})")
    if stats["kind"] == "categorical":
        top = stats["top"][0]["customers"] if stats["top"] else 0
        rows = [[t["value"], t["customers"], render.bar(t["customers"], top)] for t in stats["top"]]
        print(render.table(rows, ["VALUE", "CUSTOMERS", ""]))
        if stats["distinct"] > len(rows):
            print(f"({stats['distinct']} distinct values, top {len(rows)} shown)")
    elif stats["kind"] == "numeric":
        print(render.table([list(stats["percentiles"].values())], list(stats["percentiles"])))
    if result is not None:
        condition = f"{args.attr} {args.op} {args.value if args.value is not None else ''}"
        _print_estimate(result, f"estimate of {condition.strip()}")
    return None


# -- parser -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", default=argparse.SUPPRESS, help=f"API base URL (LS_API_URL, {DEFAULT_URL})"
    )
    common.add_argument("--token", default=argparse.SUPPRESS, help="API token (LS_API_TOKEN)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="JSON")
    parser = argparse.ArgumentParser(
        prog="segments", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("LS_API_URL", DEFAULT_URL),
        help=f"API base URL (default $LS_API_URL or {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token", default=os.environ.get("LS_API_TOKEN"), help="API token ($LS_API_TOKEN)"
    )
    parser.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, run: Command, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(run=run)
        return p

    p = add("list", _list, "list segments with their state and member counts")
    p.add_argument("--tag", help="only segments with this tag")
    p.add_argument("--name", help="only segments whose name contains this text")
    add("show", _show, "one segment: definition, state, members, recent jobs").add_argument("id")
    p = add("members", _members, "the first members with their attributes")
    p.add_argument("id")
    p.add_argument("--limit", type=int, default=20, help="how many (1..1000, default 20)")
    p = add("download", _download, "every member as CSV, streamed to a file")
    p.add_argument("id")
    p.add_argument("-o", "--output", required=True, help="CSV file to write")
    p.add_argument(
        "--bom", action="store_true", help="start with a UTF-8 byte order mark (for Excel)"
    )
    p = add("trend", _trend, "member count over time, as a terminal chart")
    p.add_argument("id")
    p.add_argument("--since", default="7d", help="how far back: 30m, 12h, 7d, 4w (default 7d)")
    p = add("create", _create, "create a segment from a JSON or YAML definition file")
    p.add_argument("-f", "--file", required=True, help="definition file (.json, .yaml, - = stdin)")
    p.add_argument("--activate", action="store_true", help="activate it (waits for the backfill)")
    p = add("update", _update, "replace a segment's definition (the file's id names it)")
    p.add_argument("-f", "--file", required=True, help="definition file (.json, .yaml, - = stdin)")
    for name in ("delete", "activate", "deactivate"):
        add(name, _simple(name), f"{name} a segment").add_argument("id")
    p = add("refresh", _refresh, "re-evaluate segments over every customer")
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--all", action="store_true", help="every segment")
    p.add_argument("--wait", action="store_true", help="show the job's progress bar meanwhile")
    jobs.add_commands(add)
    p = add("forget", _forget, "erase one customer's profile, history and memberships")
    p.add_argument("customer_id")
    p = add("estimate", _estimate, "how many customers a definition would select (dry run)")
    p.add_argument("-f", "--file", required=True, help="definition file (.json, .yaml, - = stdin)")
    p = add("quick", _quick, "an attribute's distribution; with --op/--value, a size estimate")
    p.add_argument("attr", help="attribute name")
    p.add_argument("--op", help="operator, e.g. eq, gt, in, exists")
    p.add_argument("--value", help='value (JSON when it parses: 40, true, ["a","b"])')
    schedules_cli.register(add, common)
    exports_cli.register(add, common)
    insights_cli.register(add, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    api = ApiClient(args.url, args.token)
    try:
        output = args.run(api, args)
    except UsageError as exc:
        print(f"segments {args.command}: {exc}", file=sys.stderr)
        return 2
    except ApiFailure as exc:
        print(f"segments {args.command}: error {exc}", file=sys.stderr)
        if exc.status == 401 and not args.token:
            print("hint: pass --token or set LS_API_TOKEN", file=sys.stderr)
        return 1
    except OperatorError as exc:
        print(f"segments {args.command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `segments show x | head`: the reader left, not an error
        sys.stderr.close()
        return 0
    if output is not None:
        print(json.dumps(output, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
