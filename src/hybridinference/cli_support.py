"""What every CLI command module shares: the ``--config`` option, loading a config or
exiting with its message, and running one store action."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from hybridinference.config import GatewayConfig, load_config
from hybridinference.errors import ConfigError
from hybridinference.routing.build import check_strategies
from hybridinference.storage import Store
from hybridinference.storage.runtime import prepare_store

T = TypeVar("T")
CONFIG_ENV = "HYBRIDINFERENCE_CONFIG"
DEFAULT_CONFIG = "config/quickstart.yaml"

config_option = click.option(
    "--config",
    "config_path",
    envvar=CONFIG_ENV,
    default=DEFAULT_CONFIG,
    show_default=True,
    type=click.Path(dir_okay=False),
    help=f"YAML config file (or ${CONFIG_ENV}).",
)


def load_or_exit(path: str) -> GatewayConfig:
    try:
        config = load_config(path, os.environ)
        check_strategies(config)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    return config


def with_store(config: GatewayConfig, action: Callable[[Store], Awaitable[T]]) -> T:
    """Open the configured store (migrating it if allowed), run ``action``, close it."""

    async def run() -> T:
        store = await prepare_store(config.storage)
        try:
            return await action(store)
        finally:
            await store.aclose()

    try:
        return asyncio.run(run())
    except ConfigError as exc:  # e.g. an out-of-date schema with migrate_on_serve off
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
