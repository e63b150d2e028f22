"""The HTTP API served by the worker: reads from Redis, mutations through the control topic."""

from .app import register

__all__ = ["register"]
