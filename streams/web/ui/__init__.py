"""The Segments page: a web UI on the worker's HTTP API, under ``/ui/``.

Server-rendered Jinja2 pages with small scripts; every read and change goes through the
HTTP API (`Loopback`), for a browser signed in with the API token (`Sessions`).
"""

from .routes import register

__all__ = ["register"]
