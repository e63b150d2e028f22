"""The Faust (faust-streaming) application of livesegments and its runtime."""

import livesegments_compiled  # noqa: F401  (the compiled build's finder, first)
