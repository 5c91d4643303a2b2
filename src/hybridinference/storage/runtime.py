"""The storage side of a running gateway, built from ``StorageConfig``: the store
(migrated, or checked to be current), the journal, the log writer and the pruner —
started together and stopped in the right order."""

from __future__ import annotations

import time
from dataclasses import dataclass

from hybridinference.config.schema import StorageConfig
from hybridinference.errors import ConfigError
from hybridinference.storage import journal_dir, open_store
from hybridinference.storage.base import Store
from hybridinference.storage.journal import Journal
from hybridinference.storage.migrations import LATEST
from hybridinference.storage.redaction import Redactor
from hybridinference.storage.retention import Pruner, RetentionPolicy
from hybridinference.storage.writer import LogWriter


@dataclass(frozen=True, slots=True)
class StorageRuntime:
    store: Store
    journal: Journal
    writer: LogWriter
    pruner: Pruner | None

    async def aclose(self) -> None:
        """Drain the writer (queue, then journal), then close everything."""
        if self.pruner is not None:
            await self.pruner.aclose()
        await self.writer.aclose()
        await self.journal.aclose()
        await self.store.aclose()


async def prepare_store(config: StorageConfig) -> Store:
    """Open the store; migrate it when ``migrate_on_serve``, else insist it is current."""
    store = open_store(config.url)
    try:
        if config.migrate_on_serve:
            await store.migrate()
        elif (version := await store.schema_version()) != LATEST:
            raise ConfigError(
                f"storage: database schema is at version {version}, this gateway needs "
                f"{LATEST}: run `hybridinference db upgrade` (or set migrate_on_serve)"
            )
    except BaseException:
        await store.aclose()
        raise
    return store


async def start_storage(config: StorageConfig) -> StorageRuntime:
    store = await prepare_store(config)
    journal = Journal(journal_dir(config), fsync=config.journal_fsync)
    try:
        await journal.open()
    except BaseException:
        await store.aclose()
        raise
    writer = LogWriter(
        store,
        journal,
        queue_size=config.queue_size,
        batch_size=config.batch_size,
        flush_interval=config.flush_interval,
        write_timeout=config.write_timeout,
        redactor=Redactor.build(config.redact, config.redact_patterns)
        if config.store_content
        else None,
    )
    writer.start()
    pruner = None
    if config.retention_days is not None:
        policy = RetentionPolicy(config.retention_days, batch_size=config.prune_batch_size)
        pruner = Pruner(store, policy, clock=time.time)
        pruner.start()
    return StorageRuntime(store=store, journal=journal, writer=writer, pruner=pruner)
