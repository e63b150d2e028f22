from .fixtures import harness  # noqa: F401
