"""Hot reload at the composition level: the current config generation and its swap.

A ``Generation`` is everything a request reads from the configuration: the file's
config, the routing built from it with the runtime overrides applied, the resolved
feature flags and the version. ``ConfigRuntime.current`` holds one; replacing it is a
single attribute assignment, so a request that read ``state.routing.manager`` once
finishes on that generation while new requests see the next.

A reload (file change, SIGHUP, ``POST /admin/config/reload``) loads and validates the
file, builds the next routing from the current one (``routing.build``: adapters, health,
statistics and circuits of unchanged providers and routes are reused), applies the
overrides, then swaps and retires the old generation in the background. Any failure
before the swap leaves the current generation in place; it is logged, counted and
returned. Overrides are re-read from the database every ``reload.overrides_interval``
seconds, so every process converges on both within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import signal
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from hybridinference.config.flags import FlagTable, flag_table
from hybridinference.config.loader import load_config
from hybridinference.config.reload import (
    FileWatcher,
    ReloadStats,
    config_version,
    restart_sections,
)
from hybridinference.config.schema import GatewayConfig
from hybridinference.errors import ConfigError
from hybridinference.observability.metrics import Reading
from hybridinference.routing.build import Routing, build_routing, retire
from hybridinference.routing.overrides import Override, apply_overrides
from hybridinference.storage.base import Store

logger = logging.getLogger(__name__)
KEPT_VERSIONS = 8  # earlier versions still reported (as 0) so a scrape sees the switch
Stale = tuple[tuple[Override, str], ...]


@dataclass(frozen=True, slots=True)
class Generation:
    config: GatewayConfig  # the file, as validated
    routing: Routing  # with the runtime overrides applied: what requests use
    base: Routing  # the file alone: the next build reuses its live parts
    flags: FlagTable
    version: str
    loaded_at: float
    overrides: tuple[Override, ...] = ()
    stale: Stale = ()


@dataclass(frozen=True, slots=True)
class ReloadResult:
    status: str  # "applied" or "unchanged"
    version: str
    restart_required: tuple[str, ...] = ()


def first_generation(config: GatewayConfig, routing: Routing, now: float) -> Generation:
    return Generation(config, routing, routing, flag_table(config), config_version(config), now)


class ConfigRuntime:
    def __init__(
        self,
        current: Generation,
        *,
        path: Path | None,
        env: Mapping[str, str],
        store: Store,
        rng: random.Random,
        wall_clock: Callable[[], float],
        on_swap: Callable[[Generation], None] | None = None,
    ) -> None:
        self.current = current
        self.path = path
        self.stats = ReloadStats()
        self._env, self._store, self._rng = env, store, rng
        self._wall_clock = wall_clock
        self._on_swap = on_swap
        self._lock = asyncio.Lock()
        self._versions: list[str] = [current.version]
        self._tasks: set[asyncio.Task[object]] = set()
        self._watcher: FileWatcher | None = None
        self._poller: asyncio.Task[None] | None = None
        self._signal = False

    # -- reload ----------------------------------------------------------------------

    async def reload(self, source: str) -> ReloadResult:
        """Load, validate and apply the file; ``ConfigError`` (current config kept) when
        it is invalid or routing cannot be built from it."""
        async with self._lock:
            self.stats.last_attempt_at = self._wall_clock()
            self.stats.last_source = source
            try:
                return await self._reload()
            except Exception as exc:
                message = (
                    str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
                )
                self.stats.rejected += 1
                self.stats.last_error, self.stats.last_error_at = message, self._wall_clock()
                logger.error(
                    "config reload (%s) rejected; keeping version %s: %s",
                    source,
                    self.current.version,
                    message,
                )
                raise ConfigError(message) from None

    async def _reload(self) -> ReloadResult:
        if self.path is None:
            raise ConfigError("this gateway was not started from a config file")
        config = await asyncio.to_thread(load_config, self.path, self._env)
        old = self.current
        version = config_version(config)
        if version == old.version:
            self.stats.unchanged += 1
            return ReloadResult("unchanged", version)
        base = build_routing(config, self._env, self._rng, previous=old.base)
        routing, stale = self._overlay(base, config, old.overrides)
        new = Generation(
            config,
            routing,
            base,
            flag_table(config),
            version,
            self._wall_clock(),
            old.overrides,
            stale,
        )
        restart = tuple(restart_sections(old.config, config))
        self._swap(new)
        base.start()
        self._spawn(retire(old.base, base, drain_timeout=old.config.timeouts.total))
        self.stats.applied += 1
        self.stats.last_error = None
        logger.info("config reloaded: version %s -> %s", old.version, version)
        if restart:
            logger.warning(
                "config sections changed that apply at restart only: %s", ", ".join(restart)
            )
        self._report_stale(stale, old.stale)
        return ReloadResult("applied", version, restart)

    def _overlay(
        self, base: Routing, config: GatewayConfig, overrides: tuple[Override, ...]
    ) -> tuple[Routing, Stale]:
        manager, stale = apply_overrides(base.manager, config, overrides, self._rng)
        routing = base if manager is base.manager else dataclasses.replace(base, manager=manager)
        return routing, tuple(stale)

    def _swap(self, new: Generation) -> None:
        self.current = new  # the one assignment requests observe
        if new.version not in self._versions:
            self._versions = [*self._versions[-(KEPT_VERSIONS - 1) :], new.version]
        if self._on_swap is not None:
            self._on_swap(new)

    # -- overrides -------------------------------------------------------------------

    async def refresh_overrides(self) -> None:
        """Re-read the overrides; apply them if they changed."""
        rows = await self._store.list_overrides()
        overrides = tuple(Override(r.model, r.route, r.field, orjson.loads(r.value)) for r in rows)
        async with self._lock:
            old = self.current
            if overrides == old.overrides:
                return
            routing, stale = self._overlay(old.base, old.config, overrides)
            self._swap(dataclasses.replace(old, routing=routing, overrides=overrides, stale=stale))
            logger.info(
                "runtime overrides applied: %d active, %d stale",
                len(overrides) - len(stale),
                len(stale),
            )
            self._report_stale(stale, old.stale)

    def _report_stale(self, stale: Stale, before: Stale) -> None:
        for override, reason in stale:
            if (override, reason) not in before:
                logger.warning(
                    "override %s %s %s not applied: %s",
                    override.model,
                    override.route or "-",
                    override.field,
                    reason,
                )

    async def _poll_overrides(self, interval: float) -> None:
        while True:
            try:
                await self.refresh_overrides()
            except Exception:  # the database may be away: keep the overrides we have
                logger.warning("could not read runtime overrides", exc_info=True)
            await asyncio.sleep(interval)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        settings = self.current.config.reload
        self._poller = asyncio.create_task(self._poll_overrides(settings.overrides_interval))
        if self.path is not None and settings.watch:
            self._watcher = FileWatcher(self.path, lambda: self._quiet("file"), settings.interval)
            self._watcher.start()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            # only the main thread of a process may own signals (tests run apps in threads)
            loop.add_signal_handler(signal.SIGHUP, lambda: self._spawn(self._quiet("signal")))
            self._signal = True

    async def _quiet(self, source: str) -> None:
        with contextlib.suppress(ConfigError):  # logged and counted by reload
            await self.reload(source)

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        if self._signal:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._watcher is not None:
            await self._watcher.aclose()
        for task in (self._poller, *self._tasks):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    # -- reporting -------------------------------------------------------------------

    def describe(self) -> dict[str, object]:
        current = self.current
        return {
            "version": current.version,
            "loaded_at": current.loaded_at,
            "path": str(self.path) if self.path else None,
            "reloads": self.stats.describe(),
            "overrides": {
                "active": len(current.overrides) - len(current.stale),
                "stale": len(current.stale),
            },
        }

    def readings(self) -> Iterator[Reading]:
        for version in self._versions:
            yield Reading("config_info", float(version == self.current.version), (version,))
        yield Reading("config_reloads", self.stats.applied, ("applied",))
        yield Reading("config_reloads", self.stats.rejected, ("rejected",))
        current = self.current
        yield Reading("config_overrides", len(current.overrides) - len(current.stale))
        yield Reading("config_overrides_stale", len(current.stale))
