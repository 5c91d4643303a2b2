"""``config diff`` and the ``check-config`` summary."""

from __future__ import annotations

from typing import Any

from hybridinference.config import parse_config
from hybridinference.config.diff import diff_configs
from hybridinference.config.summary import summarize


def _config(**models: Any) -> dict[str, Any]:
    return {
        "providers": {
            "a": {"kind": "demo"},
            "b": {
                "kind": "openai",
                "base_url": "http://127.0.0.1:1/v1",
                "api_key_env": "B_KEY",
                "optional": True,
            },
            "c": {"kind": "openai", "base_url": "http://127.0.0.1:2/v1", "api_key_env": "C_KEY"},
        },
        "models": [
            {"name": "m1", "routes": [{"provider": "a", "model": "x", "weight": 1}]},
            {
                "name": "m2",
                "routes": [{"provider": "b", "model": "y"}, {"provider": "a", "model": "z"}],
            },
            *models.get("extra", []),
        ],
    }


def test_diff_matches_models_and_routes_by_name() -> None:
    old_data = _config()
    new_data = _config(extra=[{"name": "m3", "routes": [{"provider": "a", "model": "w"}]}])
    new_data["models"][0]["routes"][0]["weight"] = 5
    new_data["models"][1]["routes"].reverse()  # reordering is not a change
    old = parse_config(old_data, {}, "old.yaml")
    new = parse_config(new_data, {}, "new.yaml")
    changes = [str(c) for c in diff_configs(old, new)]
    assert "~ models[m1].routes[a/x].weight: 1.0 -> 5.0" in changes
    assert any(c.startswith("+ models[m3]") for c in changes)
    assert len(changes) == 2


def test_diff_of_identical_configs_is_empty() -> None:
    config = parse_config(_config(), {}, "same.yaml")
    assert diff_configs(config, config) == []


def test_summary_reports_missing_required_key_and_disabled_optional_provider() -> None:
    config = parse_config(_config(), {}, "c.yaml")
    report = summarize(config, {})
    assert report.problems == ("providers.c.api_key_env: environment variable C_KEY is not set",)
    text = "\n".join(report.lines)
    assert "b: kind=openai location=cloud disabled (B_KEY is not set)" in text
    assert "m2: strategy=weighted routes: a/z" in text
    assert summarize(config, {"C_KEY": "x", "B_KEY": "y"}).problems == ()
