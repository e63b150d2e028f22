"""Faust's aiokafka producer with idempotence on.

faust-streaming 0.15.3 turns on `enable_idempotence` only inside transactions; otherwise a
retried produce request (a broker that fails over mid-request, on a cluster) can write a
message twice. With idempotence the broker drops the retry's duplicate by producer id and
sequence number, and acks=all (`producer_acks=-1`) waits for `min.insync.replicas` copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["IdempotentProducer"]


class IdempotentProducer(faust_aiokafka.Producer):
    """Every aiokafka producer faust builds: acks=all, idempotent."""

    def _settings_extra(self) -> Mapping[str, Any]:
        return {**super()._settings_extra(), "acks": "all", "enable_idempotence": True}
