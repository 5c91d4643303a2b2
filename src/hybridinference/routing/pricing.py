"""Expected cost of a request on each route, as routing decisions compare them.

- On-demand routes cost their list price for the request's estimated tokens.
- A quota route's tokens are prepaid, so its cost is the quota's shadow price
  (``quota``): from a small fraction of the dearest on-demand alternative when the quota
  is fresh, up to that alternative's full price as it runs out.
- A route with a concurrency cap (a local engine's slots, a concurrency subscription)
  adds a congestion price, the paper's λ: nothing while it is idle, rising with its
  occupancy u as u³, scaled by the cheapest on-demand alternative and by how long this
  request would hold a slot (its expected output against ``expected_output``). When
  slots are scarce they go to short requests, which free them soon, instead of long
  ones; a full route is not eligible at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hybridinference.routing.quota import shadow_price

if TYPE_CHECKING:
    from hybridinference.routing.routes import Route
    from hybridinference.routing.strategies.base import RequestInfo

CONGESTION_POWER = 3


def effective_costs(
    routes: Sequence[Route], request: RequestInfo, floor: float, expected_output: int = 256
) -> list[float]:
    prompt, output = request.prompt_tokens, request.output_tokens
    costs = [route.price(prompt, output) for route in routes]
    quota = [i for i, route in enumerate(routes) if route.quota.active]
    capped = [i for i, route in enumerate(routes) if route.cap is not None]
    if not quota and not capped:
        return costs
    on_demand = [costs[i] for i, route in enumerate(routes) if not route.quota.active]
    if quota:
        high = max(on_demand) if on_demand else max(costs)
        if high <= 0.0:
            high = max(costs) or 1e-9
        for i in quota:
            costs[i] = shadow_price(routes[i].quota.used(request.day), floor * high, high)
    if capped:
        paid = [c for i, c in enumerate(costs) if c > 0 and i not in capped and i not in quota]
        if paid:
            alternative = min(paid)
            length = output / max(1, expected_output)
            for i in capped:
                route = routes[i]
                used = route.load.in_flight / route.cap if route.cap else 1.0
                costs[i] += alternative * used**CONGESTION_POWER * length
    return costs
