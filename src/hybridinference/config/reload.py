"""Config versions, reload bookkeeping and the file watcher behind hot reload.

A config's version is the SHA-256 of its canonical JSON form (first 16 hex digits), so
every process that loaded the same content reports the same version whatever the file's
formatting. The watcher polls the file — one ``stat`` per interval, no inotify, so it
works the same on every filesystem, in containers and on config maps — and calls
``on_change`` when size, mtime or inode changed; what a change means (load, validate,
swap) is ``runtime.ConfigRuntime``'s business. ``restart_sections`` names what a reload
cannot change in a running process.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from hybridinference.background import cancel_and_wait
from hybridinference.config.schema import GatewayConfig

logger = logging.getLogger(__name__)

#: sections read once at startup (listeners, middleware, stores, limiter, dashboard):
#: a reload that changes one applies the rest and says a restart is needed for these
RESTART_SECTIONS = ("server", "auth", "storage", "observability", "limits", "dashboard", "reload")
#: fields of those sections that are read per request and so do change on reload
LIVE_FIELDS = {"storage": ("store_content",), "server": ("trusted_proxies", "max_body_bytes")}


def config_version(config: GatewayConfig) -> str:
    canonical = orjson.dumps(config.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()[:16]


def restart_sections(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    """The startup-only sections that differ between ``old`` and ``new``."""
    changed = []
    for name in RESTART_SECTIONS:
        live = set(LIVE_FIELDS.get(name, ()))
        before = getattr(old, name).model_dump(exclude=live)
        after = getattr(new, name).model_dump(exclude=live)
        if before != after:
            changed.append(name)
    return changed


@dataclass(slots=True)
class ReloadStats:
    """What reloads did in this process (admin endpoint, metrics)."""

    applied: int = 0
    rejected: int = 0
    unchanged: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    last_attempt_at: float | None = None
    last_source: str | None = None  # "file", "signal", "admin", ...

    def describe(self) -> dict[str, object]:
        return {
            "applied": self.applied,
            "rejected": self.rejected,
            "unchanged": self.unchanged,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "last_attempt_at": self.last_attempt_at,
            "last_source": self.last_source,
        }


Signature = tuple[int, int, int]


@dataclass(slots=True)
class FileWatcher:
    """Polls ``path`` every ``interval`` seconds; calls ``on_change`` after a change."""

    path: Path
    on_change: Callable[[], Awaitable[object]]
    interval: float = 1.0
    _signature: Signature | None = None
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def _stat(self) -> Signature | None:
        try:
            info = os.stat(self.path)
        except OSError:
            return None  # mid-replace or removed: wait for it to come back
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def start(self) -> None:
        # No signature yet: the first poll always checks the file, so a change made
        # between loading the config and starting the watcher (a slow worker start) is
        # not missed; the same content is an "unchanged" reload, a file read and no swap.
        self._signature = None
        self._task = asyncio.create_task(self._poll(), name="config-watcher")

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            signature = self._stat()
            if signature is None or signature == self._signature:
                continue
            self._signature = signature
            try:
                await self.on_change()
            except Exception:  # reported by on_change; the watcher must keep watching
                logger.debug("config reload after a file change failed", exc_info=True)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
