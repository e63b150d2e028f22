from tests.state.fixtures import aredis, keyspace  # noqa: F401

from .fixtures import ctx  # noqa: F401
