from __future__ import annotations

import pickle

from insights import InsightError


def test_insight_error_survives_the_trip_from_the_analysis_process() -> None:
    """Regression: an InsightError raised in the process pool broke the pool (BrokenProcessPool)
    because it could not be unpickled with its three fields."""
    error = pickle.loads(pickle.dumps(InsightError("unknown_attribute", "no 'x'", "using[1]")))
    assert (error.code, error.message, error.path) == ("unknown_attribute", "no 'x'", "using[1]")
