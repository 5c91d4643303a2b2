"""OpenRouter-compatible request options through the gateway: the ``provider`` object,
the ``models`` fallback list and the ``:floor``/``:nitro`` suffixes are honoured and
never forwarded upstream."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import GatewayFactory
from tests.integration.test_routing import Fakes, chat, engine_up, fakes, r, routing_config

__all__ = ["engine_up", "fakes"]  # fixtures shared with test_routing


def options_gateway(fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory) -> Any:
    models = [
        {
            "name": "opt",
            "strategy": "round_robin",
            "routes": [
                r("fast", "ok-opt", 8.0),
                r("cheap", "ok-opt", 1.0),
                r("engine", "ok-opt", 3.0),
            ],
        },
        {"name": "broken", "routes": [r("fast", "status-500-opt")]},
        {"name": "secret", "routes": [r("cheap", "ok-secret")]},
    ]
    return make_gateway(config=routing_config(fakes, tmp_path, models))


def route_of(gateway: Any, model: str, **body: Any) -> str:
    response = chat(gateway, model, **body)
    assert response.status_code == 200, response.text
    return str(response.headers["x-hybridinference-route"])


def test_provider_order_only_ignore_and_sort(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    gateway = options_gateway(fakes, tmp_path, make_gateway)
    for _ in range(3):
        assert route_of(gateway, "opt", provider={"order": ["engine"]}) == "engine/ok-opt"
        assert route_of(gateway, "opt", provider={"only": ["cheap"]}) == "cheap/ok-opt"
        assert route_of(gateway, "opt", provider={"sort": "price"}) == "cheap/ok-opt"
        assert route_of(gateway, "opt", provider={"ignore": ["fast", "cheap"]}) == "engine/ok-opt"
        assert (
            route_of(gateway, "opt", provider={"max_price": {"prompt": 5}, "sort": "price"})
            == "cheap/ok-opt"
        )
    forwarded = fakes.engine.log.bodies("ok-opt")[-1]
    assert "provider" not in forwarded and "models" not in forwarded


def test_provider_preferences_that_match_nothing_are_a_400(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    gateway = options_gateway(fakes, tmp_path, make_gateway)
    response = chat(gateway, "opt", provider={"only": ["nobody"]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "provider"
    response = chat(gateway, "opt", provider={"sort": "vibes"})
    assert response.status_code == 400


def test_no_fallbacks_means_only_the_ordered_provider(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    gateway = options_gateway(fakes, tmp_path, make_gateway)
    fakes.engine.down = True
    response = chat(gateway, "opt", provider={"order": ["engine"], "allow_fallbacks": False})
    assert response.status_code == 502  # would have failed over without the option
    assert route_of(gateway, "opt", provider={"order": ["engine"]}) != "engine/ok-opt"


def test_models_fallback_list(fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory) -> None:
    gateway = options_gateway(fakes, tmp_path, make_gateway)
    assert route_of(gateway, "broken", models=["secret"]) == "cheap/ok-secret"
    assert "models" not in fakes.fast.log.bodies("status-500-opt")[-1]
    assert chat(gateway, "broken", models=["no-such-model"]).status_code == 404


def test_floor_and_nitro_suffixes(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    gateway = options_gateway(fakes, tmp_path, make_gateway)
    for _ in range(3):
        assert route_of(gateway, "opt:floor") == "cheap/ok-opt"
    # nitro sorts by measured output throughput; every route has served by now
    nitro = {route_of(gateway, "opt:nitro") for _ in range(3)}
    assert len(nitro) == 1
    assert chat(gateway, "opt:floor").json()["model"] == "opt:floor"
