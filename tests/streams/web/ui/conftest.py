from ..fixtures import api_harness  # noqa: F401
from .fixtures import browser, signed_in, ui  # noqa: F401
