"""The hedging policy's pure parts: when a request counts as late, and the budget."""

from __future__ import annotations

from hybridinference.config.routing import HedgingConfig, SLOConfig
from hybridinference.routing.hedging import HedgeBudget, hedge_delay
from tests.unit.test_strategies import feed, make_route

CONFIG = HedgingConfig(enabled=True, quantile=0.9, min_delay=0.05, max_delay=3.0, budget=0.1)


def test_delay_is_the_primary_quantile_clamped() -> None:
    primary, backup = make_route("p"), make_route("b")
    assert hedge_delay(primary, backup, CONFIG, None, 100.0) == 3.0  # unmeasured: max
    feed(primary, [0.1 * i for i in range(1, 11)])  # 0.1 .. 1.0
    assert hedge_delay(primary, backup, CONFIG, None, 100.0) == 1.0
    feed(primary, [0.001] * 200)
    assert hedge_delay(primary, backup, CONFIG, None, 100.0) == 0.05  # never below min


def test_slo_leaves_the_backup_time_to_make_it() -> None:
    primary, backup = make_route("p"), make_route("b")
    feed(primary, [1.5] * 50)  # p90 = 1.5 s
    feed(backup, [0.7] * 50)  # its tail: 0.7 s
    slo = SLOConfig(ttft=2.0, percentile=0.95)
    assert abs(hedge_delay(primary, backup, CONFIG, slo, 100.0) - 1.3) < 1e-9


def test_budget_caps_the_share_and_counts() -> None:
    budget = HedgeBudget(0.1)
    spent = 0
    for _ in range(1000):
        budget.earn()
        spent += budget.spend()
    assert 95 <= spent <= 101  # one in ten, plus the initial token
    assert budget.describe()["hedged"] == spent and budget.describe()["requests"] == 1000
    none = HedgeBudget(0.0)
    none.earn()
    assert not none.spend()


def test_budget_allows_a_small_burst_only() -> None:
    budget = HedgeBudget(0.5, burst=3)
    for _ in range(100):
        budget.earn()  # nothing spent for a while: at most `burst` saved up
    assert [budget.spend() for _ in range(5)] == [True, True, True, False, False]
