"""`livesegments`: run the worker, create topics, load the demo, run the benchmark."""

from __future__ import annotations

import argparse
import logging
import sys

import livesegments_compiled

from .settings import Settings

__all__ = ["main"]


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from faust.worker import Worker as FaustWorker

    from .app import create_app
    from .interpreter import tune_process
    from .topics import ensure_topics

    tune_process(settings)  # before anything makes an event loop
    partitions = ensure_topics(settings)
    worker = create_app(settings, partitions)
    print(
        f"livesegments worker: kafka {settings.kafka_bootstrap}, redis "
        f"{settings.describe()[1][1]}, events topic {settings.events_topic} "
        f"({partitions} partitions), HTTP http://127.0.0.1:{settings.web_port}/metrics",
        flush=True,
    )
    print(f"livesegments worker: build {livesegments_compiled.BUILD.describe()}", flush=True)
    print(
        f"livesegments worker: event loop {settings.event_loop}, switch interval "
        f"{settings.switch_interval_ms} ms",
        flush=True,
    )

    class _Worker(FaustWorker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            # faust's terminal spinner sets the root logger to DEBUG at WARN and above,
            # which makes every library debug call build a record: keep it off
            self.spinner = None

        def _on_sigterm(self) -> None:
            _exit_after(settings.shutdown_timeout_s)
            super()._on_sigterm()

        def _on_sigint(self) -> None:
            _exit_after(settings.shutdown_timeout_s)
            super()._on_sigint()

    _Worker(worker.app, loglevel=args.loglevel, quiet=True).execute_from_commandline()
    return 0


def _exit_after(seconds: float) -> None:
    """Bound the shutdown: a stop that hangs (a batch retrying, Kafka unreachable while the
    producer flushes) ends the process after `seconds`. Nothing is lost: a batch that was not
    applied was not committed to Kafka either and is read again by the next owner."""
    import os
    import threading

    def exit_now() -> None:
        logging.getLogger(__name__).error(
            "worker did not stop within %.0fs of the signal (LS_SHUTDOWN_TIMEOUT_S); exiting now",
            seconds,
        )
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(seconds, exit_now)
    timer.daemon = True
    timer.start()


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    from .topics import ensure_topics

    partitions = ensure_topics(settings)
    print(f"{settings.events_topic}: {partitions} partitions; all topics present")
    return 0


def _settings(settings: Settings, args: argparse.Namespace) -> int:
    for env, value, doc in settings.describe():
        print(f"{env:24} {value:32} {doc}")
    return 0


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(settings, customers=args.customers, seconds=args.seconds)


def _command(settings: Settings, args: argparse.Namespace) -> int:
    import json
    import pathlib

    from .client import Client

    text = pathlib.Path(args.file).read_text() if args.file else args.json
    if not text:
        print("livesegments command: give the command as JSON or with -f FILE", file=sys.stderr)
        return 2
    try:
        command = json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"livesegments command: not JSON: {exc}", file=sys.stderr)
        return 2
    client = Client(settings)
    try:
        reply = client.command(command, timeout=args.timeout)
    except TimeoutError:
        print(
            f"livesegments command: no reply within {args.timeout:g}s on "
            f"{settings.replies_topic}; is a worker running? (the command stays queued on "
            f"{settings.control_topic} and runs when one starts)",
            file=sys.stderr,
        )
        return 1
    finally:
        client.close()
    print(json.dumps(reply, indent=2))
    return 0 if reply.get("ok") else 1


def _follow(settings: Settings, args: argparse.Namespace) -> int:
    import time

    from .client import Client

    client = Client(settings)
    seen = 0
    try:
        while True:
            changes = client.poll_membership().changes
            for change in changes[seen:]:
                if args.segment in (None, change["segment_id"]):
                    print(
                        f"{change['at']} {change['segment_id']} {change['customer_id']} "
                        f"{change['change']} ({change['cause']}, seq {change['seq']})",
                        flush=True,
                    )
            seen = len(changes)
            time.sleep(0.2)
    except KeyboardInterrupt:
        return 0
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="livesegments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="run a worker (joins the consumer group)")
    worker.add_argument("--loglevel", default="info")
    worker.set_defaults(run=_worker)
    sub.add_parser("topics", help="create the topics when missing").set_defaults(run=_topics)
    sub.add_parser("settings", help="print the settings and their variables").set_defaults(
        run=_settings
    )
    demo = sub.add_parser(
        "demo", help="load a sample population and example segments, then follow changes"
    )
    demo.add_argument("--customers", type=int, default=500)
    demo.add_argument("--seconds", type=float, default=None, help="stop after this long")
    demo.set_defaults(run=_demo)
    command = sub.add_parser("command", help="send one control command (JSON) and print its reply")
    command.add_argument("json", nargs="?", help="the command as a JSON object")
    command.add_argument("-f", "--file", help="read the command from this JSON file")
    command.add_argument("--timeout", type=float, default=60.0)
    command.set_defaults(run=_command)
    follow = sub.add_parser("follow", help="print membership changes from the start, live")
    follow.add_argument("--segment", help="only this segment")
    follow.set_defaults(run=_follow)
    args = parser.parse_args(argv)
    level = logging.INFO if args.command == "worker" else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command != "worker":
        logging.getLogger("kafka").setLevel(logging.CRITICAL)  # connection chatter on close
    settings = Settings.from_env()
    return int(args.run(settings, args))


if __name__ == "__main__":
    sys.exit(main())
