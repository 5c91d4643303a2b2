"""Feature flags (``flags:`` globally, ``models[].flags:`` per model) and the ``reload:``
section of the configuration file.

A flag is typed and documented here; an unknown flag is a config error (``extra="forbid"``
as everywhere). Per-model flags left unset inherit the global value. ``FlagTable`` is the
resolved view the gateway reads per request (a dict lookup), rebuilt with every config
generation, so flags change on hot reload like the rest of the file.

Where each flag is honoured:

- ``hedging``: ``routing.build`` (a model hedges only when its ``hedging.enabled`` and the
  flag are both on).
- ``strategy``: ``routing.build`` (replaces the model's ``strategy``; checked against the
  strategy registry like the model's own).
- ``fallbacks``: ``routing.manager`` (off: one attempt, no failover to another route,
  the client's ``models`` fallback list ignored).
- ``content_logging``: ``gateway.exchange`` / ``gateway.inference`` (store prompt and
  answer in the request log; unset: ``storage.store_content``).
- ``reasoning_passthrough``: ``gateway.inference`` (off: reasoning fields are removed from
  answers on the OpenAI surface).
- ``anthropic_endpoint``: ``gateway.messages`` (off: ``/v1/messages`` answers 404).
- ``dashboard``: ``cli serve`` (off: the dashboard is not started; read at start only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from hybridinference.config.schema import GatewayConfig


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelFlags(_Strict):
    """Per-model flags; unset (null) inherits the global ``flags`` value."""

    hedging: bool | None = Field(None, description="Allow hedging for this model.")
    content_logging: bool | None = Field(None, description="Store this model's content.")
    strategy: str | None = Field(None, description="Routing strategy override.")
    fallbacks: bool | None = Field(None, description="Allow failover to other routes/models.")
    reasoning_passthrough: bool | None = Field(
        None, description="Pass reasoning fields (reasoning_content, ...) to clients."
    )


class FeatureFlags(_Strict):
    """Gateway-wide switches (hot-reloadable except ``dashboard``)."""

    hedging: bool = Field(True, description="Off: no model hedges, whatever its config.")
    content_logging: bool | None = Field(
        None, description="Store prompts and answers; unset: storage.store_content."
    )
    strategy: str | None = Field(
        None, description="Routing strategy for every model without its own flag."
    )
    fallbacks: bool = Field(True, description="Off: one attempt per request, no failover.")
    reasoning_passthrough: bool = Field(True, description="Off: reasoning fields removed.")
    anthropic_endpoint: bool = Field(True, description="Off: /v1/messages answers 404.")
    dashboard: bool = Field(True, description="Off: serve does not start the dashboard.")


class ReloadConfig(_Strict):
    """Hot reload: the file is polled; overrides are re-read from the database."""

    watch: bool = Field(True, description="Poll the config file and reload it on change.")
    interval: float = Field(1.0, gt=0, description="Seconds between checks of the file.")
    overrides_interval: float = Field(
        2.0, gt=0, description="Seconds between reads of the runtime overrides."
    )


@dataclass(frozen=True, slots=True)
class ResolvedFlags:
    """One model's flags, globals filled in."""

    hedging: bool
    content_logging: bool
    strategy: str | None
    fallbacks: bool
    reasoning_passthrough: bool


@dataclass(frozen=True, slots=True)
class FlagTable:
    globals: FeatureFlags
    default: ResolvedFlags
    models: dict[str, ResolvedFlags]  # by name and alias

    def for_model(self, name: str | None) -> ResolvedFlags:
        if name is None:
            return self.default
        return self.models.get(name, self.default)


def _resolve(flags: FeatureFlags, store_content: bool, own: ModelFlags | None) -> ResolvedFlags:
    base_content = store_content if flags.content_logging is None else flags.content_logging

    def pick(value: bool | None, default: bool) -> bool:
        return default if value is None else value

    if own is None:
        own = ModelFlags()
    return ResolvedFlags(
        hedging=pick(own.hedging, flags.hedging),
        content_logging=pick(own.content_logging, base_content),
        strategy=own.strategy or flags.strategy,
        fallbacks=pick(own.fallbacks, flags.fallbacks),
        reasoning_passthrough=pick(own.reasoning_passthrough, flags.reasoning_passthrough),
    )


def flag_table(config: GatewayConfig) -> FlagTable:
    flags, store_content = config.flags, config.storage.store_content
    models: dict[str, ResolvedFlags] = {}
    for model in config.models:
        resolved = _resolve(flags, store_content, model.flags)
        for name in (model.name, *model.aliases):
            models[name] = resolved
    return FlagTable(flags, _resolve(flags, store_content, None), models)
