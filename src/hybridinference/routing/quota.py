"""A route's prepaid daily quota: tokens and dollars used today, and the shadow price.

The shadow price follows the online primal-dual rule of the HybridInference paper:
ψ(z) = L·(U/L)^z, with z the fraction of the quota used. An unused quota is almost
free (L), a nearly spent one costs as much as the dearest on-demand route (U), so the
quota goes first to requests that would be expensive elsewhere, and lasts the day.
"""

from __future__ import annotations

from hybridinference.config.routing import RouteLimits

DAY = 86_400.0


class QuotaUsage:
    """Usage in the current UTC day (``day`` = unix seconds // 86400)."""

    __slots__ = ("active", "cost", "day", "limits", "tokens")

    def __init__(self, limits: RouteLimits) -> None:
        self.limits = limits
        self.active = limits.has_quota  # read on every decision: a plain attribute
        self.day = 0
        self.tokens = 0
        self.cost = 0.0

    def _roll(self, day: int) -> None:
        if day != self.day:
            self.day = day
            self.tokens = 0
            self.cost = 0.0

    def add(self, day: int, tokens: int, cost: float) -> None:
        self._roll(day)
        self.tokens += tokens
        self.cost += cost

    def used(self, day: int) -> float:
        """Fraction of the quota used today (the larger of tokens and dollars); 0 without one."""
        if day != self.day:
            return 0.0
        limits = self.limits
        used = 0.0
        if limits.daily_tokens is not None:
            used = self.tokens / limits.daily_tokens
        if limits.daily_cost is not None:
            used = max(used, self.cost / limits.daily_cost)
        return used

    def exhausted(self, day: int) -> bool:
        return self.active and self.used(day) >= 1.0

    def describe(self, day: int) -> dict[str, object]:
        fresh = day == self.day
        return {
            "daily_tokens": self.limits.daily_tokens,
            "daily_cost": self.limits.daily_cost,
            "tokens_today": self.tokens if fresh else 0,
            "cost_today": round(self.cost, 6) if fresh else 0.0,
            "used": round(self.used(day), 4),
        }


def shadow_price(used: float, low: float, high: float) -> float:
    """ψ(z) = L·(U/L)^z for z in [0, 1] (clamped)."""
    z = min(1.0, max(0.0, used))
    if low <= 0.0 or high <= low:
        return high * z
    return float(low * (high / low) ** z)
