"""docker-compose.yml publishes nothing but the HTTP API, on the host's loopback, and its
clustered profile is consistent.

The development machines have no Docker, so the file is checked as data: which ports each
service publishes, that the workers listen where the published port reaches them, and that
the `cluster` profile's brokers, Redis nodes and workers name each other correctly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.settings import Settings

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"
WORKERS = ["worker", "worker-cluster"]


def _services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def test_only_the_api_port_is_published_and_only_on_loopback() -> None:
    services = _services()
    published = {name: s.get("ports", []) for name, s in services.items() if s.get("ports")}
    assert list(published) == WORKERS  # Kafka and Redis stay in the compose network
    for worker in WORKERS:
        for spec in published[worker]:
            host, _host_ports, container_port = str(spec).split(":")
            assert host == "127.0.0.1"
            assert int(container_port) == Settings().web_port
    for service in services.values():
        assert "network_mode" not in service  # "host" would publish every port


@pytest.mark.parametrize("worker", WORKERS)
def test_the_worker_listens_where_the_published_port_reaches_it(worker: str) -> None:
    environment = _services()[worker]["environment"]
    assert environment["LS_WEB_BIND"] == "0.0.0.0"
    assert environment["LS_API_TOKEN"].startswith("${LS_API_TOKEN:?")  # required, no default
    assert environment["LS_EXPORT_ROOT"] == "/data/exports"
    Settings.from_env({k: str(v) for k, v in environment.items() if k != "LS_API_TOKEN"})


def _profile(name: str) -> dict[str, Any]:
    return {k: s for k, s in _services().items() if name in s.get("profiles", [])}


def test_the_single_node_services_need_no_profile() -> None:
    assert sorted(k for k, s in _services().items() if "profiles" not in s) == [
        "kafka",
        "redis",
        "worker",
    ]


def test_the_cluster_profile_has_three_kafka_nodes_in_one_quorum() -> None:
    cluster = _profile("cluster")
    brokers = {k: s["environment"] for k, s in cluster.items() if k.startswith("kafka-")}
    assert len(brokers) == 3
    assert len({env["CLUSTER_ID"] for env in brokers.values()}) == 1
    voters = {f"{env['KAFKA_NODE_ID']}@{name}:9093" for name, env in brokers.items()}
    for name, env in brokers.items():
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
    assert len({s["volumes"][0] for k, s in cluster.items() if k in brokers}) == 3


def test_the_cluster_workers_use_every_broker_and_redis_node() -> None:
    cluster = _profile("cluster")
    env = cluster["worker-cluster"]["environment"]
    settings = Settings.from_env({k: str(v) for k, v in env.items() if k != "LS_API_TOKEN"})
    brokers = sorted(k for k in cluster if k.startswith("kafka-"))
    assert sorted(b.split(":")[0] for b in settings.kafka_bootstrap.split(",")) == brokers
    assert (settings.topic_replication, settings.topic_min_insync) == (len(brokers), 2)
    redis_nodes = sorted(k for k in cluster if k.startswith("redis-") and k[-1].isdigit())
    scheme, _, rest = settings.redis_url.partition("://")
    assert scheme == "redis+cluster"
    assert sorted(n.split(":")[0] for n in rest.rstrip("/").split(",")) == redis_nodes
    for node in redis_nodes:
        command = cluster[node]["command"]
        assert command[command.index("--cluster-enabled") + 1] == "yes"
        assert command[command.index("--appendonly") + 1] == "yes"
    init = " ".join(cluster["redis-cluster-init"]["command"])
    assert all(f"{node}:6379" in init for node in redis_nodes)
    depends = cluster["worker-cluster"]["depends_on"]
    assert set(depends) == {*brokers, "redis-cluster-init"}
    assert depends["redis-cluster-init"]["condition"] == "service_completed_successfully"
    # one published port per worker of the range, at least as many partitions as ports
    first, last = cluster["worker-cluster"]["ports"][0].split(":")[1].split("-")
    assert settings.events_partitions >= int(last) - int(first) + 1
