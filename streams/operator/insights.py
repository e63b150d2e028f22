"""`segments` subcommands for AI-found segments and insights: overlap, differentiators,
suggest (measure, activity), suggestion (preview), accept, similar."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from collections.abc import Callable
from typing import Any, TextIO

from . import render
from .errors import UsageError
from .http import ApiClient
from .jobs import analysis_result

__all__ = ["condition_text", "register"]

Command = Callable[[ApiClient, argparse.Namespace], Any]
Add = Callable[[str, Command, str], argparse.ArgumentParser]


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def condition_text(cond: dict[str, Any]) -> str:
    """A rule condition in one line: `country eq "DE" and count(purchase, 30d) gte 3`."""
    if "all" in cond:
        return " and ".join(_group(c) for c in cond["all"])
    if "any" in cond:
        return " or ".join(_group(c) for c in cond["any"])
    if "not" in cond:
        return f"not {_group(cond['not'])}"
    if "attr" in cond:
        value = "" if "value" not in cond else " " + json.dumps(cond["value"], ensure_ascii=False)
        return f"{cond['attr']} {cond['op']}{value}"
    if "event" in cond:
        inner = ", ".join(
            str(x) for x in (cond["event"], cond.get("prop"), cond.get("within")) if x
        )
        return f"{cond['agg']}({inner}) {cond['op']} {json.dumps(cond['value'])}"
    if "in_segment" in cond:
        return f"in segment {cond['in_segment']}"
    return json.dumps(cond)


def _group(cond: dict[str, Any]) -> str:
    text = condition_text(cond)
    return f"({text})" if ("all" in cond or "any" in cond) else text


def _where(suggestion: dict[str, Any]) -> str:
    rules = suggestion["definition"]["rules"]
    return condition_text(rules[0]["where"]) if len(rules) == 1 else json.dumps(rules)


def _overlap(api: ApiClient, args: argparse.Namespace) -> Any:
    body = api.request("POST", "/insights/overlap", {"segment_ids": args.ids})
    if args.json:
        return body
    sizes = ", ".join(f"{sid} {n}" for sid, n in body["sizes"].items())
    print(f"overlap of {len(args.ids)} segments ({sizes}; union {body['union']})")
    rows = [
        [r["label"], r["customers"], f"{r['percent_of_union']:.1f}%",
         " ".join(f"{r[f'percent_of_{sid}']:.1f}% of {sid}" for sid in r["in"])]
        for r in body["regions"]
    ]  # fmt: skip
    print(render.table(rows, ["REGION", "CUSTOMERS", "OF UNION", "SHARE OF EACH"], 60))
    return None


def _differentiators(api: ApiClient, args: argparse.Namespace) -> Any:
    query = {"vs": args.vs, "limit": args.limit}
    body = api.request("GET", f"/segments/{_q(args.id)}/differentiators", query=query)
    if args.json:
        return body
    print(f"{args.id} ({body['segment_size']}) vs {body['vs']} ({body['baseline_size']}); "
          f"{body['effect_sizes']}")  # fmt: skip
    rows = [
        [d["feature"], f"{d['effect_size']:+.2f}", d["magnitude"], d["text"]]
        for d in body["differentiators"]
    ]
    print(render.table(rows, ["FEATURE", "EFFECT", "SIZE", "WHAT DIFFERS"], 70))
    for item in body["left_out"]:
        print(f"left out: {item['attribute']}: {item['reason']}")
    return None


def _suggest(api: ApiClient, args: argparse.Namespace) -> Any:
    if args.kind == "measure":
        request: dict[str, Any] = {"primary": args.name, "using": _names(args.using)}
        if args.target is not None:
            try:
                request["target"] = json.loads(args.target)
            except json.JSONDecodeError:
                request["target"] = args.target
        if args.depth is not None:
            request["max_depth"] = args.depth
        job = api.request("POST", "/suggestions/measure", request)
    else:
        request = {"event": args.name, "lookback": args.lookback}
        if args.value:
            request["value"] = args.value
        job = api.request("POST", "/suggestions/activity", request)
    body = analysis_result(api, job, args.wait, _progress_out(args))
    if args.json or not args.wait:
        return body
    if args.kind == "measure":
        print(f"{body['measure']} over {body['customers']} customers: {body['overall_value']:g} "
              f"(trained on {body['training_rows']} rows; {body['test']})")  # fmt: skip
        rows = [
            [s["suggestion_id"], s["size"], s["text"], "yes" if s["significant"] else "no",
             _where(s)]
            for s in body["suggestions"]
        ]  # fmt: skip
        print(render.table(rows, ["SUGGESTION", "SIZE", "VALUE IN GROUP VS ALL", "SIGNIF.",
                                  "RULE"], 90))  # fmt: skip
    else:
        value = f", value {body['value']}" if body["value"] else ""
        print(f"RFM on {body['event']!r}{value} over {body['lookback']}: "
              f"{body['active_customers']} of {body['customers']} customers active")  # fmt: skip
        rows = [
            [s["suggestion_id"], s["group"], s["size"], f"{s['percent']:.1f}%", s["thresholds"]]
            for s in body["suggestions"]
        ]
        print(render.table(rows, ["SUGGESTION", "GROUP", "SIZE", "SHARE", "THRESHOLDS"], 90))
    print("preview: segments suggestion ID; accept: segments accept ID [--activate]")
    return None


def _suggestion(api: ApiClient, args: argparse.Namespace) -> Any:
    body = api.request("GET", f"/suggestions/{_q(args.id)}", query={"limit": args.limit})
    if args.json:
        return body
    print(f"{args.id}: {body['definition']['name']}")
    print(f"  rule:     {_where(body)}")
    if body.get("text"):
        print(f"  value:    {body['text']}")
    if body.get("thresholds"):
        print(f"  group:    {body['group']}: {body['thresholds']}")
    print(f"  estimate: {body['estimate']} customers now (suggested with {body['size']})")
    print(f"  members:  {', '.join(body['members']) or '-'}")
    return None


def _accept(api: ApiClient, args: argparse.Namespace) -> Any:
    request: dict[str, Any] = {"activate": args.activate}
    if args.id_override:
        request["id"] = args.id_override
    if args.name:
        request["name"] = args.name
    body = api.request("POST", f"/suggestions/{_q(args.id)}/accept", request)
    if args.json:
        return body
    segment = body.get("segment", {})
    state = "active" if segment.get("active") else "inactive"
    members = body.get("members", {}).get(segment.get("id"))
    extra = f", {members} members" if members is not None else ""
    print(f"accepted {args.id}: created dynamic segment {segment.get('id')!r} ({state}{extra})")
    return None


def _similar(api: ApiClient, args: argparse.Namespace) -> Any:
    if args.min_score is not None and not 0 <= args.min_score <= 1:
        raise UsageError(f"--min-score {args.min_score}: expected 0..1")
    request: dict[str, Any] = {}
    if args.size is not None:
        request["size"] = args.size
    if args.min_score is not None:
        request["min_score"] = args.min_score
    if args.attributes:
        request["attributes"] = _names(args.attributes)
    if args.segment_id:
        request["segment_id"] = args.segment_id
    if args.name:
        request["name"] = args.name
    job = api.request("POST", f"/segments/{_q(args.source)}/similar", request)
    body = analysis_result(api, job, args.wait, _progress_out(args))
    if args.json or not args.wait:
        return body
    print(f"similar to {args.source} ({body['source_size']} members) among "
          f"{body['non_members']} others; model {body['model']}")  # fmt: skip
    print(f"quality: ROC AUC {body['auc']:.3f} ({body['grade']}), out of fold, "
          f"{body['training_rows']} training rows (cap {body['max_training_rows']})")  # fmt: skip
    for item in body["left_out"]:
        print(f"left out: {item['attribute']}: {item['reason']}")
    rows = [[b["band"], f"{b['from']:.2f}-{b['to']:.2f}", b["customers"]] for b in body["bands"]]
    print(render.table(rows, ["BAND", "SCORE", "CUSTOMERS"]))
    print(f"{body['size']} customers chosen (asked {body['requested_size']}, "
          f"score >= {body['min_score']:g})")  # fmt: skip
    top = [[c["customer_id"], f"{c['score']:.3f}", c["band"]] for c in body["top"][:10]]
    if top:
        print(render.table(top, ["CUSTOMER", "SCORE", "BAND"]))
    print(f"saved as expansion segment {body['segment_id']!r} (refresh re-trains it on "
          f"{args.source}'s members)")  # fmt: skip
    return None


def _progress_out(args: argparse.Namespace) -> TextIO:
    """Progress lines go to stderr, so that stdout holds the result (also with --json)."""
    return sys.stderr


def register(add: Add, common: argparse.ArgumentParser) -> None:
    """Add the subcommands through the CLI's `add(name, run, help)`."""
    p = add("overlap", _overlap, "exact overlap of 2..6 segments (every region, with shares)")
    p.add_argument("ids", nargs="+", metavar="ID")
    p = add("differentiators", _differentiators, "what sets a segment apart from a baseline")
    p.add_argument("id")
    p.add_argument("--vs", help="baseline segment (default: all customers)")
    p.add_argument("--limit", type=int, default=10, help="how many features (default 10)")
    p = add("suggest", _suggest, "suggested segments: by a measure, or by activity (RFM)")
    p.add_argument("kind", choices=["measure", "activity"])
    p.add_argument("name", help="measure: the primary attribute; activity: the event type")
    p.add_argument("--using", help="measure: influencing attributes a,b (default: all)")
    p.add_argument("--target", help="measure: the category of a categorical primary")
    p.add_argument("--depth", type=int, help="measure: tree depth 1..6 (default 3)")
    p.add_argument("--value", help="activity: numeric property summed as money, e.g. amount")
    p.add_argument("--lookback", default="90d", help="activity: period, e.g. 90d (default)")
    _no_wait(p)
    p = add("suggestion", _suggestion, "preview a suggestion: rule, estimate now, members")
    p.add_argument("id")
    p.add_argument("--limit", type=int, default=20, help="members shown (default 20)")
    p = add("accept", _accept, "create a suggestion as a dynamic segment")
    p.add_argument("id", metavar="SUGGESTION")
    p.add_argument("--activate", action="store_true", help="activate it (waits for backfill)")
    p.add_argument("--id", dest="id_override", help="segment id (default: the suggestion's)")
    p.add_argument("--name", help="segment name (default: the suggestion's)")
    p = add("similar", _similar, "similar customers (lookalikes) of a segment, scored 0..1")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--size", type=int, help="how many (default 20%% of the source)")
    p.add_argument("--min-score", type=float, help="lowest score kept, 0..1 (default 0.4)")
    p.add_argument("--attributes", help="attributes to use a,b (default: all that qualify)")
    p.add_argument("--segment-id", help="id of the expansion segment (default SOURCE-similar)")
    p.add_argument("--name", help="its name (default: Similar to <source's name>)")
    _no_wait(p)


def _no_wait(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="print the job (id, status) at once instead of waiting for its result",
    )
