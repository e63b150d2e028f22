"""AI-found segments and segment insights, as pure functions over customer data. No I/O.

* `overlap`: exact region counts of 2+ membership sets.
* `differentiators`: features whose distribution differs most between a segment and a baseline.
* `measure`: decision-tree suggestions that explain a primary attribute, as segment definitions.
* `rfm`: recency / frequency / monetary groups, as windowed-aggregate definitions.
* `lookalike`: a members-vs-non-members classifier that scores non-members 0..1.

Customers come in as anything with ``customer_id``, ``attrs`` and ``events`` (the stored
`state.profile.Profile` qualifies); the wiring in `streams/` reads them from Redis.
"""

from .errors import InsightError

__all__ = ["InsightError"]
