"""Config loading: interpolation, validation errors that name the file and the field,
cross-references, strategies, and optional providers switched off by a missing key."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from hybridinference.config import load_config, parse_config
from hybridinference.errors import ConfigError
from hybridinference.routing.build import build_routing, check_strategies

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "config" / "quickstart.yaml"


def minimal(**extra: Any) -> dict[str, Any]:
    return {
        "providers": {"demo": {"kind": "demo"}},
        "models": [{"name": "demo", "routes": [{"provider": "demo", "model": "demo-1"}]}],
        **extra,
    }


def write(tmp_path: Path, data: object, name: str = "gateway.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def config_error(tmp_path: Path, data: object, env: dict[str, str] | None = None) -> str:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env or {})
    message = str(caught.value)
    assert str(path) in message  # every error names the file
    return message


def test_quickstart_loads_with_an_empty_environment() -> None:
    config = load_config(QUICKSTART, {})
    names = [m.name for m in config.models]
    assert "demo" in names
    assert config.auth.required is False
    assert config.storage.url == "sqlite:///./data/hybridinference.db"
    assert config.server.host == "127.0.0.1"
    cloud = [n for n, p in config.providers.items() if getattr(p, "api_key_env", None)]
    assert cloud and all(config.providers[n].optional for n in cloud)


@pytest.mark.parametrize(
    ("template", "env", "expected"),
    [
        ("${HOST}", {"HOST": "10.0.0.1"}, "10.0.0.1"),
        ("${HOST:-0.0.0.0}", {}, "0.0.0.0"),
        ("${HOST:-0.0.0.0}", {"HOST": "10.0.0.2"}, "10.0.0.2"),
        ("${HOST:-0.0.0.0}", {"HOST": ""}, "0.0.0.0"),  # shell rule: empty counts as unset
        ("${HOST:-}", {}, ""),
        ("pre-${A}-${B:-b}-post", {"A": "a"}, "pre-a-b-post"),
        ("$HOST and {HOST}", {"HOST": "x"}, "$HOST and {HOST}"),  # only ${...} is special
    ],
)
def test_interpolation(template: str, env: dict[str, str], expected: str) -> None:
    config = parse_config(minimal(server={"host": template}), env, "t.yaml")
    assert config.server.host == expected


def test_interpolation_reaches_nested_lists_and_numbers() -> None:
    data = minimal(server={"port": "${PORT:-9000}"})
    data["models"][0]["aliases"] = ["${ALIAS}"]
    config = parse_config(data, {"ALIAS": "d2"}, "t.yaml")
    assert config.server.port == 9000
    assert config.models[0].aliases == ("d2",)


def test_interpolated_value_is_validated_like_a_literal(tmp_path: Path) -> None:
    message = config_error(tmp_path, minimal(auth={"required": "${AUTH:-maybe}"}))
    assert "auth.required" in message


def test_missing_variable_without_default_names_file_field_and_variable(tmp_path: Path) -> None:
    message = config_error(tmp_path, minimal(server={"host": "${NOT_SET_ANYWHERE}"}))
    assert "server.host" in message
    assert "NOT_SET_ANYWHERE" in message


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"severs": {}}, "severs"),
        ({"server": {"prot": 1}}, "server.prot"),
        ({"timeouts": {"first_bite": 1}}, "timeouts.first_bite"),
    ],
)
def test_unknown_field_is_rejected_naming_file_and_field(
    tmp_path: Path, patch: dict[str, Any], field: str
) -> None:
    message = config_error(tmp_path, minimal(**patch))
    assert field in message
    assert "unknown field" in message


@pytest.mark.parametrize("kind", ["openai", "demo", "anthropic", "gemini", "ollama"])
def test_unknown_provider_field_is_named_without_the_union_tag(tmp_path: Path, kind: str) -> None:
    data = minimal()
    data["providers"]["fake"] = {"kind": kind, "bse_url": "y"}
    if kind == "openai":
        data["providers"]["fake"]["base_url"] = "http://x/v1"
    message = config_error(tmp_path, data)
    assert "providers.fake.bse_url: unknown field" in message
    assert f".{kind}." not in message


def test_wrong_type_names_the_field_and_expectation(tmp_path: Path) -> None:
    message = config_error(tmp_path, minimal(timeouts={"connect": "soon"}))
    assert "timeouts.connect" in message
    assert "number" in message


def test_unknown_provider_kind_is_rejected(tmp_path: Path) -> None:
    data = minimal()
    data["providers"]["x"] = {"kind": "telepathy"}
    message = config_error(tmp_path, data)
    assert "providers.x.kind: unknown kind 'telepathy' (expected one of: " in message
    assert "openai" in message and "demo" in message


def test_missing_provider_kind_is_rejected(tmp_path: Path) -> None:
    data = minimal()
    data["providers"]["x"] = {"base_url": "http://x/v1"}
    assert "providers.x.kind: missing (expected one of: " in config_error(tmp_path, data)


def test_a_list_field_given_a_scalar_says_list(tmp_path: Path) -> None:
    assert "models: expected a list" in config_error(tmp_path, minimal(models="demo"))


def test_route_naming_an_unknown_provider_is_rejected(tmp_path: Path) -> None:
    data = minimal()
    data["models"].append({"name": "m2", "routes": [{"provider": "nope", "model": "x"}]})
    message = config_error(tmp_path, data)
    assert "models[1].routes[0].provider" in message
    assert "'nope'" in message
    assert "demo" in message  # what was expected


@pytest.mark.parametrize(
    "second",
    [
        {"name": "demo", "routes": [{"provider": "demo", "model": "x"}]},
        {"name": "other", "aliases": ["demo"], "routes": [{"provider": "demo", "model": "x"}]},
    ],
)
def test_duplicate_model_names_are_rejected(tmp_path: Path, second: dict[str, Any]) -> None:
    data = minimal()
    data["models"].append(second)
    message = config_error(tmp_path, data)
    assert "models[1]" in message
    assert "'demo'" in message


def test_model_without_routes_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, minimal(models=[{"name": "m", "routes": []}]))
    assert "models[0].routes" in message


def test_unknown_strategy_is_rejected_naming_the_model() -> None:
    data = minimal()
    data["models"][0]["strategy"] = "astrology"
    config = parse_config(data, {}, "t.yaml")
    with pytest.raises(ConfigError) as caught:
        check_strategies(config)
    assert "models[0].strategy" in str(caught.value)
    assert "astrology" in str(caught.value)
    assert "weighted" in str(caught.value)  # the known ones are listed


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    message = config_error(tmp_path, "models: [\n  - name: x\n    routes: {")
    assert "YAML" in message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    assert "mapping" in config_error(tmp_path, "- a\n- b\n")


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match=r"absent\.yaml"):
        load_config(path, {})


def test_empty_file_is_the_default_config(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), {})
    assert config.models == ()
    assert config.auth.required is True  # secure by default


def with_providers(*, optional: bool) -> dict[str, Any]:
    data = minimal()
    data["providers"]["cloud"] = {
        "kind": "openai",
        "base_url": "https://cloud.invalid/v1",
        "api_key_env": "CLOUD_KEY",
        "optional": optional,
    }
    data["models"] += [
        {"name": "cloud-only", "routes": [{"provider": "cloud", "model": "c"}]},
        {
            "name": "mixed",
            "routes": [{"provider": "cloud", "model": "c"}, {"provider": "demo", "model": "d"}],
        },
    ]
    return data


async def test_optional_provider_without_its_key_is_disabled_not_an_error() -> None:
    config = parse_config(with_providers(optional=True), {}, "t.yaml")
    routing = build_routing(config, {}, random.Random(0))
    try:
        assert "cloud" in routing.disabled_providers
        names = {r.routes.name: r for r in routing.manager.models}
        assert set(names) == {"demo", "mixed"}  # a model with no usable route is hidden
        assert [route.provider for route in names["mixed"].routes.routes] == ["demo"]
    finally:
        await routing.aclose()


async def test_optional_provider_with_its_key_is_enabled() -> None:
    config = parse_config(with_providers(optional=True), {}, "t.yaml")
    routing = build_routing(config, {"CLOUD_KEY": "k"}, random.Random(0))
    try:
        assert "cloud" not in routing.disabled_providers
        assert {r.routes.name for r in routing.manager.models} == {"demo", "cloud-only", "mixed"}
    finally:
        await routing.aclose()


async def test_required_provider_without_its_key_is_a_config_error() -> None:
    config = parse_config(with_providers(optional=False), {}, "t.yaml")
    with pytest.raises(ConfigError) as caught:
        build_routing(config, {}, random.Random(0))
    assert "providers.cloud.api_key_env" in str(caught.value)
    assert "CLOUD_KEY" in str(caught.value)
