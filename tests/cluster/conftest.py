"""One private 3-broker Kafka cluster and Redis for the tests of this folder (started once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .services import PrivateCluster


@pytest.fixture(scope="session")
def private_cluster() -> Iterator[PrivateCluster]:
    """Three KRaft nodes and a Redis on free ports; stopped and removed after the session."""
    cluster = PrivateCluster("cluster")
    try:
        cluster.start_all()
        yield cluster
    finally:
        cluster.close()
