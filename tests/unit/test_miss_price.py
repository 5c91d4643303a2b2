"""The SLO's dual price: dual ascent on expected misses, one price per miss."""

from __future__ import annotations

import pytest

from hybridinference.routing.strategies.miss_price import HIGHEST, LOWEST, START, MissPrice


def test_price_rises_with_too_many_expected_misses_and_falls_with_too_few() -> None:
    price = MissPrice(0.99)
    for _ in range(1000):
        price.update(0.02)  # twice the allowed 1 %
    assert price.kappa > START
    high = price.kappa
    for _ in range(3000):
        price.update(0.0)
    assert price.kappa < high
    settled = MissPrice(0.99)
    for _ in range(1000):
        settled.update(0.01)  # exactly the allowed share: no change
    assert settled.kappa == pytest.approx(START)


def test_price_stays_in_range() -> None:
    price = MissPrice(0.99)
    for _ in range(200_000):
        price.update(1.0)
    assert price.kappa == HIGHEST
    for _ in range(200_000):
        price.update(0.0)
    assert price.kappa == LOWEST


def test_price_per_miss_is_the_same_for_small_and_large_requests() -> None:
    price = MissPrice(0.99)
    first = price.price(2.0)
    assert first == START * 2.0
    # the scale is a slow average of the dearest route's cost, not this request's
    small, large = price.price(0.1), price.price(10.0)
    assert small == pytest.approx(first, rel=0.01)
    assert large == pytest.approx(first, rel=0.01)
