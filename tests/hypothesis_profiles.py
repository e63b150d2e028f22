"""How many examples the property tests run: the hypothesis profile, chosen by ``LS_HYPOTHESIS``.

- ``fast`` (the default: a bare ``pytest``, the no-service tier): a tenth of each property
  test's budget (at least 10 examples), so ``pytest -m "not integration"`` stays quick.
- ``ci`` (``test.sh``, hence ``.ci/run``, and the mutation run): every test's whole budget,
  the examples the suite has always run.

``LS_PROPERTY_SCALE`` multiplies on top (the mutation run uses 0.1, a thorough run 10).
Neither profile has a deadline: a loaded 2-core machine must not fail a test on time.
``tests/conftest.py`` registers and loads the profiles; tests with a budget of their own ask
:func:`examples` for it.
"""

from __future__ import annotations

import os

from hypothesis import settings

SCALES = {"fast": 0.1, "ci": 1.0}
"""The share of each property test's budget that a profile runs."""

HYPOTHESIS_DEFAULT_EXAMPLES = 100
"""hypothesis's own default budget, for the tests that do not set one."""


def profile_name() -> str:
    """The profile of this run (``LS_HYPOTHESIS``, default ``fast``)."""
    name = os.environ.get("LS_HYPOTHESIS", "fast")
    if name not in SCALES:
        raise ValueError(f"LS_HYPOTHESIS={name!r}: expected one of {', '.join(sorted(SCALES))}")
    return name


def examples(budget: int) -> int:
    """The examples to run of a test whose whole budget (the ``ci`` profile's) is ``budget``."""
    scale = SCALES[profile_name()] * float(os.environ.get("LS_PROPERTY_SCALE", "1"))
    return max(10, int(budget * scale))


def register_profiles() -> str:
    """Register both profiles with hypothesis, load this run's and return its name."""
    for name in SCALES:
        settings.register_profile(
            name,
            max_examples=max(10, int(HYPOTHESIS_DEFAULT_EXAMPLES * SCALES[name])),
            deadline=None,
        )
    name = profile_name()
    settings.load_profile(name)
    return name
