from tests.state.fixtures import aredis, keyspace  # noqa: F401
