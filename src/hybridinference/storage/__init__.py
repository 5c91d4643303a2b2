"""Storage: request log, API keys and spend, usage analytics. A map:

- ``base``: the ``Store`` protocol both backends implement.
- ``sqlite``: the embedded default; ``postgres``: asyncpg, COPY-based batch inserts.
- ``migrations``: the schema as numbered migrations per backend.
- ``rows``: record ↔ row/JSON codecs and spend periods, shared by everything here.
- ``writer``: ``LogWriter``, the bounded queue and batch flusher; ``journal``: the local
  spill file it falls back to when the database is away.
- ``usage``: analytics queries and their reference aggregation.
- ``retention``: pruning by age; ``redaction``: scrubbing stored content;
  ``export``: CSV/JSONL export.
- ``open_store(url)``: URL scheme → backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from hybridinference.config.schema import StorageConfig
from hybridinference.errors import ConfigError
from hybridinference.storage.base import Store
from hybridinference.storage.journal import Journal
from hybridinference.storage.postgres import PostgresStore
from hybridinference.storage.sqlite import SQLiteStore
from hybridinference.storage.writer import LogWriter

BACKENDS: Mapping[str, Callable[[str], Store]] = {
    "sqlite": SQLiteStore.from_url,
    "postgresql": PostgresStore.from_url,
    "postgres": PostgresStore.from_url,
}


def open_store(url: str) -> Store:
    scheme = url.split(":", 1)[0]
    factory = BACKENDS.get(scheme)
    if factory is None:
        raise ConfigError(
            f"storage.url: unknown scheme {scheme!r} (expected one of {sorted(BACKENDS)})"
        )
    return factory(url)


def data_dir(config: StorageConfig) -> Path:
    """Where local files live: beside the SQLite database, else ``storage.data_dir``."""
    if config.url.startswith("sqlite:///") and config.data_dir is None:
        return Path(config.url.removeprefix("sqlite:///")).parent
    return Path(config.data_dir or "data")


def journal_dir(config: StorageConfig) -> Path:
    return Path(config.journal_dir) if config.journal_dir else data_dir(config) / "journal"


__all__ = ["Journal", "LogWriter", "Store", "data_dir", "journal_dir", "open_store"]
