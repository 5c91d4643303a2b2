"""Runtime overrides: operator changes stored in the database and applied on top of the
routing built from the file, without a reload.

An override names a model (by its config name), for route fields also a route
(``provider/upstream-model``), a field and a value:

=============  ======  ==========================================================
field          target  value
=============  ======  ==========================================================
``enabled``    route   ``false`` takes the route out (shown as disabled), ``true`` back
``weight``     route   a number >= 0, replacing the file's weight
``pin``        model   a route name: only that route serves the model
``strategy``   model   a strategy name (``routing.strategies``)
``visibility`` model   ``public``; ``unlisted`` (served, not in /v1/models);
                       ``hidden`` (not listed, 404 like an unknown model)
=============  ======  ==========================================================

``apply_overrides`` never builds adapters or touches live state: it makes new
``RoutedModel``s around the same ``Route`` objects (a re-weighted route shares the
original's load, statistics, circuit and quota). An override naming a model or route
the file no longer has is returned as stale (listed and logged, never applied).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from hybridinference.config.schema import GatewayConfig
from hybridinference.errors import InvalidRequest
from hybridinference.routing.manager import RoutedModel, RoutingManager
from hybridinference.routing.routes import ModelRoutes, Route
from hybridinference.routing.strategies import STRATEGIES

Value = bool | float | str
VISIBILITY = ("public", "unlisted", "hidden")


@dataclass(frozen=True, slots=True)
class Override:
    model: str
    route: str  # "" for a model-level field
    field: str
    value: Value


def _bool(value: object) -> Value:
    if not isinstance(value, bool):
        raise ValueError("expected true or false")
    return value


def _weight(value: object) -> Value:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError("expected a number >= 0")
    return float(value)


def _strategy(value: object) -> Value:
    if not isinstance(value, str) or value not in STRATEGIES:
        raise ValueError(f"expected one of: {', '.join(sorted(STRATEGIES))}")
    return value


def _visibility(value: object) -> Value:
    if value not in VISIBILITY:
        raise ValueError(f"expected one of: {', '.join(VISIBILITY)}")
    assert isinstance(value, str)
    return value


def _route_name(value: object) -> Value:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a route name (provider/upstream-model)")
    return value


#: field → (applies to a route?, value check)
FIELDS: Mapping[str, tuple[bool, Callable[[object], Value]]] = {
    "enabled": (True, _bool),
    "weight": (True, _weight),
    "pin": (False, _route_name),
    "strategy": (False, _strategy),
    "visibility": (False, _visibility),
}


def _route_names(config: GatewayConfig, model: str) -> list[str] | None:
    for entry in config.models:
        if entry.name == model:
            return [f"{r.provider}/{r.model}" for r in entry.routes]
    return None


def stale_reason(config: GatewayConfig, override: Override) -> str | None:
    """Why ``override`` cannot apply to ``config`` (None: it applies)."""
    names = _route_names(config, override.model)
    if names is None:
        return f"model {override.model!r} is not in the config file"
    target = override.value if override.field == "pin" else override.route
    if (override.route or override.field == "pin") and target not in names:
        return f"route {target!r} is not a route of {override.model!r}"
    return None


def check_override(
    config: GatewayConfig, model: str, route: str | None, field: str, value: object
) -> Override:
    """A valid override for ``config``, or ``InvalidRequest`` naming what is wrong."""
    spec = FIELDS.get(field)
    if spec is None:
        raise InvalidRequest(
            f"Unknown override field {field!r} (expected one of: {', '.join(FIELDS)}).",
            param="field",
        )
    for_route, check = spec
    if for_route and not route:
        raise InvalidRequest(f"The {field!r} override needs a route.", param="route")
    if not for_route and route:
        raise InvalidRequest(
            f"The {field!r} override applies to a model, not a route.", param="route"
        )
    try:
        checked = check(value)
    except ValueError as exc:
        raise InvalidRequest(f"{field}: {exc}.", param="value") from None
    names = {alias: m.name for m in config.models for alias in m.aliases}
    override = Override(names.get(model, model), route or "", field, checked)  # alias → name
    reason = stale_reason(config, override)
    if reason is not None:
        raise InvalidRequest(f"Cannot override: {reason}.", param="model")
    return override


def _reweighted(route: Route, weight: float) -> Route:
    new = dataclasses.replace(route, weight=weight)
    object.__setattr__(new, "quota", route.quota)  # one usage count, whichever object serves
    return new


def _apply_model(routed: RoutedModel, mine: list[Override], rng: random.Random) -> RoutedModel:
    fields = {(o.route, o.field): o.value for o in mine}
    pinned = fields.get(("", "pin"))
    active: list[Route] = []
    parked: list[Route] = list(routed.parked)
    for route in routed.routes.routes:
        weight = fields.get((route.name, "weight"))
        if isinstance(weight, float) and weight != route.weight:
            route = _reweighted(route, weight)
        off = fields.get((route.name, "enabled")) is False
        (parked if off or (pinned is not None and route.name != pinned) else active).append(route)
    config = routed.routes.config
    strategy = routed.strategy
    name = fields.get(("", "strategy"))
    if isinstance(name, str) and name != strategy.name:
        config = config.model_copy(update={"strategy": name})
        strategy = STRATEGIES[name](config, random.Random(rng.random()))
    visibility = fields.get(("", "visibility"), routed.visibility)
    return dataclasses.replace(
        routed,
        routes=ModelRoutes(config, tuple(active)),
        strategy=strategy,
        visibility=str(visibility),
        parked=tuple(parked),
    )


def apply_overrides(
    base: RoutingManager,
    config: GatewayConfig,
    overrides: Iterable[Override],
    rng: random.Random,
) -> tuple[RoutingManager, list[tuple[Override, str]]]:
    """``base`` with the overrides applied, and the stale ones with the reason."""
    stale: list[tuple[Override, str]] = []
    by_model: dict[str, list[Override]] = {}
    for override in overrides:
        reason = stale_reason(config, override)
        if reason is not None:
            stale.append((override, reason))
        else:
            by_model.setdefault(override.model, []).append(override)
    if not by_model:
        return base, stale
    models = {
        routed.routes.name: _apply_model(routed, by_model[routed.routes.name], rng)
        if routed.routes.name in by_model
        else routed
        for routed in base.models
    }
    return base.with_models(models), stale
