"""Provider kind → adapter factory. Adding a provider: one module, one entry here, one
config model in ``config.schema``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from hybridinference.adapters.anthropic import AnthropicAdapter
from hybridinference.adapters.base import Adapter
from hybridinference.adapters.demo import DemoAdapter
from hybridinference.adapters.gemini import GeminiAdapter
from hybridinference.adapters.h1 import ConnectionPool
from hybridinference.adapters.ollama import OllamaAdapter
from hybridinference.adapters.openai_compat import OpenAICompatAdapter
from hybridinference.config.schema import (
    AnthropicProviderConfig,
    DemoProviderConfig,
    GeminiProviderConfig,
    NativeProviderBase,
    OllamaProviderConfig,
    OpenAIProviderConfig,
    ProviderConfig,
    Timeouts,
)
from hybridinference.errors import ConfigError


@dataclass(frozen=True, slots=True)
class BuildContext:
    env: Mapping[str, str]
    timeouts: Timeouts


def _api_key(name: str, env_name: str | None, ctx: BuildContext) -> str | None:
    if env_name is None:
        return None
    value = ctx.env.get(env_name)
    if not value:
        raise ConfigError(
            f"providers.{name}.api_key_env: environment variable {env_name} is not set"
        )
    return value


def _build_openai(name: str, config: ProviderConfig, ctx: BuildContext) -> Adapter:
    assert isinstance(config, OpenAIProviderConfig)
    timeouts = config.timeouts or ctx.timeouts
    pool = ConnectionPool(config.base_url, connect_timeout=timeouts.connect)
    return OpenAICompatAdapter(name, config, pool, _api_key(name, config.api_key_env, ctx))


Builder = Callable[[str, ProviderConfig, BuildContext], Adapter]


def _native(adapter: Callable[..., Adapter], config_type: type[NativeProviderBase]) -> Builder:
    """The builder of a translating adapter: (name, config, connection pool, API key)."""

    def build(name: str, config: ProviderConfig, ctx: BuildContext) -> Adapter:
        assert isinstance(config, config_type)
        timeouts = config.timeouts or ctx.timeouts
        pool = ConnectionPool(config.base_url, connect_timeout=timeouts.connect)
        return adapter(name, config, pool, _api_key(name, config.api_key_env, ctx))

    return build


def _build_demo(name: str, config: ProviderConfig, _ctx: BuildContext) -> Adapter:
    assert isinstance(config, DemoProviderConfig)
    return DemoAdapter(name, config)


ADAPTERS: Mapping[str, Callable[[str, ProviderConfig, BuildContext], Adapter]] = {
    "openai": _build_openai,
    "demo": _build_demo,
    "anthropic": _native(AnthropicAdapter, AnthropicProviderConfig),
    "gemini": _native(GeminiAdapter, GeminiProviderConfig),
    "ollama": _native(OllamaAdapter, OllamaProviderConfig),
}


def provider_enabled(config: ProviderConfig, env: Mapping[str, str]) -> bool:
    """An ``optional`` provider whose key env var is unset is skipped, not an error."""
    key_env = getattr(config, "api_key_env", None)
    return not (config.optional and key_env and not env.get(key_env))


def build_adapter(name: str, config: ProviderConfig, ctx: BuildContext) -> Adapter:
    return ADAPTERS[config.kind](name, config, ctx)
