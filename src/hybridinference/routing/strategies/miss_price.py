"""The price of an expected SLO miss, learned online: the dual variable of the SLO.

The SLO counts requests ("``percentile`` of first tokens within ``ttft``"), so in the
Lagrangian of "minimise cost subject to at most ``1 − percentile`` of requests late"
every late request costs the same dual price λ, whatever the request's size. A
request's decision then minimises its cost plus λ × its expected misses: large requests,
where a tail-prone cheap route saves the most dollars per miss, take the risk; small
ones, which save little, go to the reliable route.

λ is held as κ × ``scale``: ``scale`` is a slow average of the dearest route's cost for
a request (so κ has no currency and no token scale) and κ is found by dual ascent —
multiplied by exp(``gain`` × (expected − allowed) / allowed) after each decision, so it
rises while the decisions expect more misses than the SLO allows and falls while they
expect fewer. The step is small: κ follows the load over tens of minutes, not request to
request. Two numbers of state; no I/O, no clock.
"""

from __future__ import annotations

import math

START = 16.0  # κ before anything was learned: a miss costs 16 typical dearest-route requests
GAIN = 2e-4  # dual ascent step per decision, in units of the allowed miss share
LOWEST, HIGHEST = 0.5, 500.0  # κ stays in this range (no wind-up in long calm or outage spells)
SCALE_GAIN = 1e-3  # the average dearest-route cost follows ~1,000 decisions


class MissPrice:
    __slots__ = ("allowed", "kappa", "scale")

    def __init__(self, percentile: float, start: float = START) -> None:
        self.allowed = 1.0 - percentile
        self.kappa = start
        self.scale = 0.0

    def price(self, dearest: float) -> float:
        """λ in this request's currency, given the dearest route's cost for it."""
        scale = self.scale
        self.scale = dearest if scale <= 0.0 else scale + SCALE_GAIN * (dearest - scale)
        return self.kappa * self.scale

    def update(self, expected_miss: float) -> None:
        """Dual ascent on the miss share the decision expects."""
        allowed = self.allowed
        if allowed <= 0.0:
            return
        step = GAIN * (expected_miss - allowed) / allowed
        self.kappa = min(HIGHEST, max(LOWEST, self.kappa * math.exp(step)))
