"""Creates the project's topics when missing (kafka-python admin client).

Replication factor and `min.insync.replicas` come from the settings (`LS_TOPIC_REPLICATION`,
`LS_TOPIC_MIN_INSYNC`): 1 / 1 on a single broker, 3 / 2 on a 3-broker cluster, where every
producer writes with acks=all, so an acknowledged message is on two brokers at least.
Topics that exist already keep their replication (the settings apply when creating them).
"""

from __future__ import annotations

import contextlib
import logging

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from .settings import Settings

__all__ = ["ensure_topics", "export_runs_topic"]

log = logging.getLogger(__name__)


def export_runs_topic(settings: Settings) -> str:
    """The internal topic of export run requests (control agent -> exporter agent)."""
    return f"{settings.control_topic}.exports"


def ensure_topics(settings: Settings) -> int:
    """Create missing topics; return the events topic's partition count."""
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap.split(","), client_id=f"{settings.app_id}-admin"
    )
    try:
        wanted = {
            settings.events_topic: settings.events_partitions,
            settings.dlq_topic: settings.events_partitions,
            settings.membership_topic: settings.events_partitions,
            settings.control_topic: 1,  # one partition: commands apply in one order
            settings.replies_topic: 1,
            export_runs_topic(settings): 1,  # one exporter at a time, runs in order
        }
        existing = set(admin.list_topics())
        config = {"min.insync.replicas": str(settings.topic_min_insync)}
        missing = [
            NewTopic(name, partitions, settings.topic_replication, topic_configs=config)
            for name, partitions in wanted.items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker was quicker
                admin.create_topics(missing)
            log.info("created topics %s", ", ".join(t.name for t in missing))
        described = admin.describe_topics([settings.events_topic])
        partitions = len(described[0]["partitions"])
        if partitions != settings.events_partitions:
            log.info(
                "%s has %d partitions (LS_EVENTS_PARTITIONS=%d applies only when creating it)",
                settings.events_topic,
                partitions,
                settings.events_partitions,
            )
        return partitions
    finally:
        admin.close()
