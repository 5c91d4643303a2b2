"""OpenRouter-compatible request options, honoured and then stripped before forwarding.

- ``models``: fallback models, tried in order after the requested one's routes fail.
- ``provider``: ``order`` (providers tried first, in that order), ``allow_fallbacks``
  (false: nothing outside ``order``; without ``order``, only the first route), ``only`` and
  ``ignore`` (provider names, or ``provider/model`` route names), ``sort``
  (``price`` | ``latency`` | ``throughput``: a fixed order instead of the strategy's), and
  ``max_price`` (``{"prompt": ..., "completion": ...}``, US dollars per million tokens).
  Other OpenRouter fields (``data_collection``, ``zdr``, ``quantizations``, ...) are
  accepted and ignored.
- model suffixes ``:floor`` (sort by price) and ``:nitro`` (sort by throughput).

Parsing is skipped entirely when the body has none of these fields (the common case).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hybridinference.errors import InvalidRequest
from hybridinference.routing.routes import Route
from hybridinference.routing.strategies.base import RequestInfo

#: body fields that are the gateway's to read, never the upstream's
STRIPPED = ("models", "provider", "route")
#: model-name suffix → sort order
SUFFIXES: Mapping[str, str] = {"floor": "price", "nitro": "throughput"}
Sort = Literal["price", "latency", "throughput"]


class MaxPrice(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    prompt: float | None = Field(None, ge=0)
    completion: float | None = Field(None, ge=0)


class ProviderPreferences(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    order: tuple[str, ...] = ()
    allow_fallbacks: bool = True
    only: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    sort: Sort | None = None
    max_price: MaxPrice | None = None


@dataclass(frozen=True, slots=True)
class RequestOptions:
    models: tuple[str, ...] = ()
    provider: ProviderPreferences | None = None


def parse_options(body: Mapping[str, Any]) -> RequestOptions | None:
    if "models" not in body and "provider" not in body:
        return None
    models = body.get("models") or ()
    if not isinstance(models, list | tuple) or not all(isinstance(m, str) for m in models):
        raise InvalidRequest("'models' must be a list of model names.", param="models")
    provider = body.get("provider")
    prefs = None
    if provider is not None:
        try:
            prefs = ProviderPreferences.model_validate(provider)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise InvalidRequest(
                f"Invalid 'provider' preferences: {where}: {first['msg']}", param="provider"
            ) from None
    return RequestOptions(tuple(models), prefs)


def _named(route: Route, names: Sequence[str]) -> bool:
    return route.provider in names or route.name in names


def admits(route: Route, prefs: ProviderPreferences) -> bool:
    """Whether ``only``/``ignore``/``max_price`` let this route serve the request."""
    if prefs.only is not None and not _named(route, prefs.only):
        return False
    if prefs.ignore and _named(route, prefs.ignore):
        return False
    limit = prefs.max_price
    if limit is not None:
        if limit.prompt is not None and route.pricing.input > limit.prompt:
            return False
        if limit.completion is not None and route.pricing.output > limit.completion:
            return False
    return True


def _latency(route: Route, info: RequestInfo) -> float:
    del info
    ewma = route.stats.ewma
    return math.inf if ewma is None else ewma


def _throughput(route: Route, info: RequestInfo) -> float:
    del info
    rate = route.stats.throughput
    return 0.0 if rate is None else -rate


def _price(route: Route, info: RequestInfo) -> float:
    return route.price(info.prompt_tokens, info.output_tokens)


SORT_KEYS: Mapping[str, Callable[[Route, RequestInfo], float]] = {
    "price": _price,
    "latency": _latency,
    "throughput": _throughput,
}


def arrange(
    ordered: list[Route], sort: str | None, prefs: ProviderPreferences | None, info: RequestInfo
) -> list[Route]:
    """Apply ``sort`` (a stable re-sort of the strategy's order), then ``order`` and
    ``allow_fallbacks``."""
    if sort is not None:
        key = SORT_KEYS[sort]
        ordered = sorted(ordered, key=lambda r: key(r, info))
    if prefs is None:
        return ordered
    if prefs.order:
        first = [r for name in prefs.order for r in ordered if r.provider == name or r.name == name]
        if not prefs.allow_fallbacks:
            return first
        chosen = {id(r) for r in first}
        return [*first, *(r for r in ordered if id(r) not in chosen)]
    if not prefs.allow_fallbacks:
        return ordered[:1]
    return ordered
