"""`livesegments`: run the worker, create topics, load the demo, run the benchmark."""

from __future__ import annotations

import argparse
import logging
import sys

from .settings import Settings

__all__ = ["main"]


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from faust.worker import Worker as FaustWorker

    from .app import create_app
    from .topics import ensure_topics

    partitions = ensure_topics(settings)
    worker = create_app(settings, partitions)
    print(
        f"livesegments worker: kafka {settings.kafka_bootstrap}, redis "
        f"{settings.describe()[1][1]}, events topic {settings.events_topic} "
        f"({partitions} partitions), HTTP http://127.0.0.1:{settings.web_port}/metrics",
        flush=True,
    )

    class _Worker(FaustWorker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            # faust's terminal spinner sets the root logger to DEBUG at WARN and above,
            # which makes every library debug call build a record: keep it off
            self.spinner = None

    _Worker(worker.app, loglevel=args.loglevel, quiet=True).execute_from_commandline()
    return 0


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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    return int(args.run(settings, args))


if __name__ == "__main__":
    sys.exit(main())
