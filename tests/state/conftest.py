from .fixtures import aredis, keyspace  # noqa: F401
