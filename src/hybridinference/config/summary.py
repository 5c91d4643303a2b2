"""A human summary of a config (``check-config``) and the problems that are not schema
errors: referenced environment variables that are missing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from hybridinference.config.schema import GatewayConfig


@dataclass(frozen=True, slots=True)
class ConfigReport:
    lines: tuple[str, ...]
    problems: tuple[str, ...]


def summarize(config: GatewayConfig, env: Mapping[str, str]) -> ConfigReport:
    lines: list[str] = []
    problems: list[str] = []
    disabled: set[str] = set()
    lines.append(f"providers ({len(config.providers)}):")
    for name, provider in sorted(config.providers.items()):
        key_env = getattr(provider, "api_key_env", None)
        status = "enabled"
        if key_env and not env.get(key_env):
            if provider.optional:
                status = f"disabled ({key_env} is not set)"
                disabled.add(name)
            else:
                status = f"MISSING {key_env}"
                problems.append(
                    f"providers.{name}.api_key_env: environment variable {key_env} is not set"
                )
        lines.append(f"  {name}: kind={provider.kind} location={provider.location} {status}")
    lines.append(f"models ({len(config.models)}):")
    for model in config.models:
        routes = [r for r in model.routes if r.provider not in disabled]
        names = ", ".join(f"{r.provider}/{r.model}" for r in routes) or "no enabled route (hidden)"
        aliases = f" aliases={','.join(model.aliases)}" if model.aliases else ""
        own = _flags(model.flags.model_dump(exclude_none=True)) if model.flags else ""
        flags = f" flags: {own}" if own else ""
        lines.append(f"  {model.name}: strategy={model.strategy}{aliases}{flags} routes: {names}")
    lines.append(f"flags: {_flags(config.flags.model_dump(exclude_none=True))}")
    for label, env_name in (
        ("auth.key_secret_env", config.auth.key_secret_env),
        ("auth.admin_token_env", config.auth.admin_token_env),
    ):
        state = "set" if env.get(env_name) else "not set"
        lines.append(f"{label}: {env_name} ({state})")
    return ConfigReport(tuple(lines), tuple(problems))


def _flags(values: Mapping[str, object]) -> str:
    shown = {True: "on", False: "off"}
    return " ".join(
        f"{name}={shown.get(value, value) if isinstance(value, bool) else value}"
        for name, value in values.items()
    )
