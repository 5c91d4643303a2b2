"""Feature flags: typed, documented, an unknown one is a config error; per-model flags
inherit the global ones; the routing flags are folded into each model's effective config
(strategy, hedging) and its routing (fallbacks)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from hybridinference.config import parse_config
from hybridinference.config.flags import FeatureFlags, ModelFlags, flag_table
from hybridinference.errors import ConfigError
from hybridinference.routing.build import build_routing, check_strategies, effective_models


def config(**extra: Any) -> dict[str, Any]:
    return {
        "providers": {"demo": {"kind": "demo"}},
        "models": [
            {
                "name": "a",
                "aliases": ["a-alias"],
                "routes": [{"provider": "demo", "model": "d"}],
                "hedging": {"enabled": True},
            },
            {
                "name": "b",
                "routes": [{"provider": "demo", "model": "d"}],
                "strategy": "cost",
                "flags": {"strategy": "least_busy", "fallbacks": False, "content_logging": True},
            },
        ],
        **extra,
    }


def test_unknown_flags_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"flags\.colour: unknown field"):
        parse_config(config(flags={"colour": True}), {}, "f.yaml")
    data = config()
    data["models"][0]["flags"] = {"hedgeing": False}
    with pytest.raises(ConfigError, match=r"models\[0\]\.flags\.hedgeing: unknown field"):
        parse_config(data, {}, "f.yaml")
    with pytest.raises(ConfigError, match=r"flags\.fallbacks: Input should be a valid boolean"):
        parse_config(config(flags={"fallbacks": "maybe"}), {}, "f.yaml")


def test_unknown_strategy_in_a_flag_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"flags\.strategy: unknown strategy 'fastest'"):
        check_strategies(parse_config(config(flags={"strategy": "fastest"}), {}, "f"))
    data = config()
    data["models"][1]["flags"]["strategy"] = "nope"
    with pytest.raises(ConfigError, match=r"models\[1\]\.flags\.strategy: unknown strategy"):
        check_strategies(parse_config(data, {}, "f"))


def test_every_flag_is_documented() -> None:
    for model in (FeatureFlags, ModelFlags):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
    assert set(ModelFlags.model_fields) <= set(FeatureFlags.model_fields)


def test_resolution_model_over_global_over_storage() -> None:
    table = flag_table(parse_config(config(flags={"hedging": False}), {}, "f"))
    a, b = table.for_model("a"), table.for_model("b")
    assert table.for_model("a-alias") == a
    assert (a.hedging, a.fallbacks, a.content_logging, a.strategy) == (False, True, False, None)
    assert (b.fallbacks, b.content_logging, b.strategy) == (False, True, "least_busy")
    assert table.for_model("unknown") == table.default == table.for_model(None)
    stored = flag_table(parse_config(config(storage={"store_content": True}), {}, "f"))
    assert stored.default.content_logging and stored.for_model("a").content_logging
    off = flag_table(
        parse_config(
            config(storage={"store_content": True}, flags={"content_logging": False}), {}, "f"
        )
    )
    assert not off.for_model("a").content_logging and off.for_model("b").content_logging


def test_routing_flags_fold_into_the_effective_models() -> None:
    parsed = parse_config(config(flags={"hedging": False, "strategy": "round_robin"}), {}, "f")
    a, b = effective_models(parsed)
    assert a.hedging.enabled is False and a.strategy == "round_robin"
    assert b.strategy == "least_busy"  # the model's own flag wins over the global one
    assert parsed.models[0].hedging.enabled is True  # the file's config is untouched
    routing = build_routing(parsed, {}, random.Random(1))
    by_name = {m.routes.name: m for m in routing.manager.models}
    assert by_name["a"].strategy.name == "round_robin" and by_name["a"].fallbacks
    assert by_name["b"].strategy.name == "least_busy" and not by_name["b"].fallbacks
    assert by_name["a"].routes.config.hedging.enabled is False  # what the race reads
    on = build_routing(parse_config(config(), {}, "f"), {}, random.Random(1))
    assert on.manager.models[0].routes.config.hedging.enabled is True


def test_check_config_summary_lists_flags() -> None:
    from hybridinference.config.summary import summarize

    report = summarize(parse_config(config(flags={"hedging": False}), {}, "f"), {})
    assert "flags: hedging=off fallbacks=on reasoning_passthrough=on" in "\n".join(report.lines)
    model_b = next(line for line in report.lines if line.startswith("  b:"))
    assert "flags: content_logging=on strategy=least_busy fallbacks=off" in model_b
