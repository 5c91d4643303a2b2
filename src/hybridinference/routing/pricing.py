"""Expected cost of a request on each route, as routing decisions compare them.

On-demand routes cost their list price for the request's estimated tokens. A quota
route's tokens are prepaid, so its cost is the quota's shadow price (``quota``): from a
small fraction of the dearest on-demand alternative when the quota is fresh, up to that
alternative's full price as it runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from hybridinference.routing.quota import shadow_price

if TYPE_CHECKING:
    from hybridinference.routing.routes import Route
    from hybridinference.routing.strategies.base import RequestInfo


def effective_costs(routes: Sequence[Route], request: RequestInfo, floor: float) -> list[float]:
    prompt, output = request.prompt_tokens, request.output_tokens
    costs = [route.price(prompt, output) for route in routes]
    quota = [i for i, route in enumerate(routes) if route.quota.active]
    if not quota:
        return costs
    on_demand = [costs[i] for i, route in enumerate(routes) if not route.quota.active]
    high = max(on_demand) if on_demand else max(costs)
    if high <= 0.0:
        high = max(costs) or 1e-9
    for i in quota:
        costs[i] = shadow_price(routes[i].quota.used(request.day), floor * high, high)
    return costs
