from .fixtures import api_harness  # noqa: F401
