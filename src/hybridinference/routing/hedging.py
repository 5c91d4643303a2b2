"""Hedging policy: when to start a backup, and how many requests may be hedged.

The race itself (start the backup, first content wins, close the loser) is run by the
manager; this module holds the pure parts it consults:

- ``hedge_delay``: the primary is "late" once it passes its own ``quantile`` of recent
  time to first token; with an SLO, the backup must also still be able to make it, so
  the delay is at most the target minus the backup's tail. Unmeasured routes use
  ``max_delay``. Always within ``[min_delay, max_delay]``.
- ``HedgeBudget``: a token bucket that caps the hedged share: each request earns
  ``budget`` tokens (up to a small burst), each hedge spends one.
"""

from __future__ import annotations

import math

from hybridinference.config.routing import HedgingConfig, SLOConfig
from hybridinference.routing.routes import Route

BURST = 5.0


def hedge_delay(
    primary: Route,
    backup: Route | None,
    config: HedgingConfig,
    slo: SLOConfig | None,
    now: float,
) -> float:
    late = primary.stats.quantile(now, config.quantile)
    delay = config.max_delay if late is None or math.isinf(late) else late
    if slo is not None and backup is not None:
        tail = backup.stats.quantile(now, slo.percentile)
        if tail is not None and not math.isinf(tail):
            delay = min(delay, slo.ttft - tail)
    return min(config.max_delay, max(config.min_delay, delay))


class HedgeBudget:
    __slots__ = ("backup_wins", "burst", "hedged", "requests", "share", "tokens")

    def __init__(self, share: float, burst: float = BURST) -> None:
        self.share = share
        self.burst = max(1.0, burst)
        self.tokens = 1.0 if share > 0 else 0.0
        self.requests = 0
        self.hedged = 0
        self.backup_wins = 0

    def earn(self) -> None:
        self.requests += 1
        self.tokens = min(self.burst, self.tokens + self.share)

    def spend(self) -> bool:
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        self.hedged += 1
        return True

    def describe(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "hedged": self.hedged,
            "backup_wins": self.backup_wins,
            "hedged_share": round(self.hedged / self.requests, 4) if self.requests else 0.0,
        }
