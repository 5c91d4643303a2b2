"""Storage: request log and API keys.

- ``base``: the ``Store`` protocol.
- ``sqlite``: the embedded default.
- ``writer``: ``LogWriter``, the bounded queue and batch flusher.
- ``open_store(url)``: URL scheme → backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from hybridinference.errors import ConfigError
from hybridinference.storage.base import Store
from hybridinference.storage.sqlite import SQLiteStore
from hybridinference.storage.writer import LogWriter

BACKENDS: Mapping[str, Callable[[str], Store]] = {
    "sqlite": SQLiteStore.from_url,
}


def open_store(url: str) -> Store:
    scheme = url.split(":", 1)[0]
    factory = BACKENDS.get(scheme)
    if factory is None:
        raise ConfigError(
            f"storage.url: unknown scheme {scheme!r} (expected one of {sorted(BACKENDS)})"
        )
    return factory(url)


__all__ = ["LogWriter", "Store", "open_store"]
