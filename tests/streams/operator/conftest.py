from ..web.fixtures import api_harness  # noqa: F401
from .fixtures import run  # noqa: F401
