"""The ``hybridinference`` command: serve, check-config, keys, version."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
import orjson

from hybridinference import __version__
from hybridinference.cli_support import CONFIG_ENV, DEFAULT_CONFIG, config_option, load_or_exit
from hybridinference.cli_support import with_store as _with_store
from hybridinference.config import GatewayConfig
from hybridinference.config.diff import diff_configs
from hybridinference.config.summary import summarize
from hybridinference.gateway.auth import describe_key, describe_spend, issue_key
from hybridinference.observability.telemetry import prepare_multiprocess_dir
from hybridinference.storage import Store, open_store
from hybridinference.storage.export import FORMATS
from hybridinference.storage.migrations import LATEST

if TYPE_CHECKING:
    from hybridinference.dashboard.runner import DashboardThread

LOG_LEVEL_ENV = "HYBRIDINFERENCE_LOG_LEVEL"


def app_from_env() -> object:
    """uvicorn factory: every worker process builds its own app from the same file."""
    from hybridinference.app import create_app

    path = os.environ.get(CONFIG_ENV, DEFAULT_CONFIG)
    config = load_or_exit(path)
    _configure_logging(config, os.environ.get(LOG_LEVEL_ENV, "info"))
    return create_app(config, dict(os.environ), config_path=path)  # watched: hot reload


def _configure_logging(config: GatewayConfig, level: str) -> None:
    """Once per process (the parent and every worker): JSON or text, secrets scrubbed."""
    from hybridinference.observability.logging import configure_logging, secret_values

    fmt = config.observability.log_format
    configure_logging(fmt, level, secret_values(config, os.environ))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """HybridInference: one OpenAI-compatible endpoint for local engines and cloud APIs."""


@main.command()
@config_option
@click.option("--host", default=None, help="Bind address (default: server.host from config).")
@click.option("--port", default=None, type=int, help="Port (default: server.port from config).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
def serve(
    config_path: str, host: str | None, port: int | None, workers: int, log_level: str
) -> None:
    """Run the gateway."""
    import uvicorn

    config = load_or_exit(config_path)
    os.environ[CONFIG_ENV] = os.path.abspath(config_path)
    os.environ[LOG_LEVEL_ENV] = log_level
    _configure_logging(config, log_level)
    dashboard = _start_dashboard(config, host, port, log_level)
    remove_metrics_dir = prepare_multiprocess_dir(workers, os.environ)
    try:
        uvicorn.run(
            "hybridinference.cli:app_from_env",
            factory=True,
            host=host or config.server.host,
            port=config.server.port if port is None else port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            access_log=False,
            timeout_keep_alive=config.server.keepalive_timeout,
            proxy_headers=False,  # server.trusted_proxies decides (uvicorn's trusts loopback)
            server_header=False,
            date_header=False,
            log_level=log_level,
            log_config=None,  # keep the structured handler _configure_logging installed
            timeout_graceful_shutdown=30,
            backlog=4096,
        )
    finally:
        remove_metrics_dir()
        if dashboard is not None:
            dashboard.stop()


def _start_dashboard(
    config: GatewayConfig, host: str | None, port: int | None, log_level: str
) -> DashboardThread | None:
    """The dashboard on its own port, in this (parent) process only: with ``--workers N``
    the worker processes never bind it."""
    from hybridinference.dashboard.runner import start_dashboard

    try:
        return start_dashboard(
            config, os.environ, gateway_host=host, gateway_port=port, log_level=log_level
        )
    except RuntimeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@main.command("check-config")
@config_option
@click.option("--quiet", is_flag=True, help="Print nothing on success.")
def check_config(config_path: str, quiet: bool) -> None:
    """Validate a config file and summarise it; exit non-zero on any problem."""
    config = load_or_exit(config_path)
    report = summarize(config, os.environ)
    if not quiet:
        for line in report.lines:
            click.echo(line)
    for problem in report.problems:
        click.echo(f"error: {config_path}: {problem}", err=True)
    if report.problems:
        sys.exit(2)
    routes = sum(len(m.routes) for m in config.models)
    click.echo(
        f"{config_path}: OK ({len(config.providers)} providers, {len(config.models)} models, "
        f"{routes} routes)"
    )


@main.group("config")
def config_group() -> None:
    """Inspect configuration files."""


@config_group.command("diff")
@click.argument("old", type=click.Path(dir_okay=False))
@click.argument("new", type=click.Path(dir_okay=False))
def config_diff(old: str, new: str) -> None:
    """Show what a reload from OLD to NEW would change (exit 1 when something differs)."""
    changes = diff_configs(load_or_exit(old), load_or_exit(new))
    for change in changes:
        click.echo(str(change))
    if not changes:
        click.echo("no changes")
    sys.exit(1 if changes else 0)


def _live_config_commands() -> None:
    """``config reload`` and the ``overrides`` group (config_cli.py)."""
    from hybridinference.config_cli import config_reload, overrides_group

    config_group.add_command(config_reload)
    main.add_command(overrides_group)


_live_config_commands()


@main.command()
def version() -> None:
    """Print the version."""
    click.echo(__version__)


@main.group()
def keys() -> None:
    """Create, list and revoke API keys (stored in the configured database)."""


KEY_SETTINGS: tuple[tuple[str, str, type, str], ...] = (
    ("--owner", "owner", str, "Who owns the key (a team or a person)."),
    ("--rpm", "rpm_limit", int, "Requests per minute."),
    ("--tpm", "tpm_limit", int, "Tokens per minute."),
    ("--concurrency", "max_concurrency", int, "Requests in flight."),
    ("--daily-budget", "daily_budget", float, "US dollars per UTC day."),
    ("--monthly-budget", "monthly_budget", float, "US dollars per UTC month."),
)


def key_settings_options(command: Callable[..., None]) -> Callable[..., None]:
    for flag, dest, kind, text in reversed(KEY_SETTINGS):
        command = click.option(flag, dest, type=kind, default=None, help=text)(command)
    return command


@keys.command("create")
@config_option
@click.option("--name", required=True, help="Who or what the key is for.")
@click.option("--model", "models", multiple=True, help="Allowed model (repeat); default: all.")
@key_settings_options
def keys_create(config_path: str, name: str, models: tuple[str, ...], **settings: Any) -> None:
    """Create a key (limits and budgets optional: unlimited). The secret is printed once
    and never stored."""
    from hybridinference.app import key_hasher

    config = load_or_exit(config_path)
    hasher = key_hasher(config, os.environ)
    record, secret = _with_store(
        config,
        lambda store: issue_key(
            store,
            hasher,
            name=name,
            allowed_models=models or None,
            now=time.time(),
            settings={k: v for k, v in settings.items() if v is not None},
        ),
    )
    click.echo(orjson.dumps({**describe_key(record), "key": secret}, option=orjson.OPT_INDENT_2))
    click.echo("Store this key now: it cannot be shown again.", err=True)


@keys.command("list")
@config_option
def keys_list(config_path: str) -> None:
    """List keys (never their secrets)."""
    config = load_or_exit(config_path)
    records = _with_store(config, lambda store: store.list_keys())
    click.echo(orjson.dumps([describe_key(r) for r in records], option=orjson.OPT_INDENT_2))


@keys.command("revoke")
@config_option
@click.argument("key_id")
def keys_revoke(config_path: str, key_id: str) -> None:
    """Revoke a key by id; running gateways stop accepting it within seconds."""
    config = load_or_exit(config_path)
    if not _with_store(config, lambda store: store.revoke_key(key_id, time.time())):
        click.echo(f"error: no active key with id {key_id!r}", err=True)
        sys.exit(1)
    click.echo(f"revoked {key_id}")


@keys.command("get")
@config_option
@click.argument("key_id")
def keys_get(config_path: str, key_id: str) -> None:
    """Show a key with its spend this UTC day and month."""
    config = load_or_exit(config_path)

    async def read(store: Store) -> tuple[Any, Any]:
        return await store.get_key(key_id), await store.key_spend(time.time())

    record, spend = _with_store(config, read)
    if record is None:
        click.echo(f"error: no key with id {key_id!r}", err=True)
        sys.exit(1)
    body = {**describe_key(record), "spend": describe_spend(spend.get(key_id))}
    click.echo(orjson.dumps(body, option=orjson.OPT_INDENT_2))


@keys.command("update")
@config_option
@click.argument("key_id")
@click.option("--name", default=None)
@click.option("--model", "models", multiple=True, help="Allowed model (repeat).")
@click.option("--all-models", is_flag=True, help="Allow every model.")
@click.option("--clear", multiple=True, help="Remove a limit or budget (field name; repeat).")
@key_settings_options
def keys_update(
    config_path: str,
    key_id: str,
    name: str | None,
    models: tuple[str, ...],
    all_models: bool,
    clear: tuple[str, ...],
    **settings: Any,
) -> None:
    """Change a key's name, models, owner, limits or budgets; gateways pick it up within
    seconds (auth.refresh_seconds)."""
    config = load_or_exit(config_path)
    changes: dict[str, Any] = {k: v for k, v in settings.items() if v is not None}
    changes.update(dict.fromkeys(clear))
    if name is not None:
        changes["name"] = name
    if models or all_models:
        changes["allowed_models"] = None if all_models else models
    try:
        record = _with_store(config, lambda store: store.update_key(key_id, changes, time.time()))
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if record is None:
        click.echo(f"error: no key with id {key_id!r}", err=True)
        sys.exit(1)
    click.echo(orjson.dumps(describe_key(record), option=orjson.OPT_INDENT_2))


@main.group()
def db() -> None:
    """The database schema (migrations)."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: str) -> None:
    """Apply missing migrations (safe while gateways run or start)."""
    config = load_or_exit(config_path)

    async def upgrade() -> list[int]:
        store = open_store(config.storage.url)
        try:
            return await store.migrate()
        finally:
            await store.aclose()

    applied = asyncio.run(upgrade())
    done = ", ".join(str(v) for v in applied) if applied else "none (already current)"
    click.echo(f"applied: {done}; schema version {LATEST}")


@main.group()
def logs() -> None:
    """The request log."""


def _when(value: str | None, default: float) -> float:
    from hybridinference.gateway.usage import parse_time

    return parse_time({"t": value} if value else {}, "t", default)


@logs.command("export")
@config_option
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), default="jsonl")
@click.option("--since", default=None, help="Unix seconds or ISO 8601 (default: 24 h ago).")
@click.option("--until", default=None, help="Unix seconds or ISO 8601 (default: now).")
@click.option("--output", "-o", default="-", type=click.Path(dir_okay=False, allow_dash=True))
def logs_export(
    config_path: str, fmt: str, since: str | None, until: str | None, output: str
) -> None:
    """Write request rows of a time range (oldest first) as CSV or JSON Lines."""
    from hybridinference.errors import GatewayError

    config = load_or_exit(config_path)
    now = time.time()
    try:
        end = _when(until, now)
        start = _when(since, end - 86_400)
    except GatewayError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    with click.open_file(output, "wb") as out:
        count = _with_store(config, lambda store: FORMATS[fmt](store, start, end, out))
    click.echo(f"exported {count} rows", err=True)


@main.command("alert-logger")
@config_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=9095, show_default=True, type=int)
@click.option(
    "--database",
    envvar="HYBRIDINFERENCE_ALERTS_DATABASE",
    default=None,
    help="sqlite:///PATH or postgresql://... (default: storage.url from config).",
)
@click.option(
    "--token-env",
    default="HYBRIDINFERENCE_ALERT_TOKEN",
    show_default=True,
    help="Env var holding the bearer token Alertmanager must send (unset: no token).",
)
def alert_logger(
    config_path: str, host: str, port: int, database: str | None, token_env: str
) -> None:
    """Receive Alertmanager webhooks, store the alerts, list them at GET /alerts."""
    import uvicorn

    from hybridinference.observability.alert_logger import create_alert_logger
    from hybridinference.observability.alert_store import open_alert_store

    config = load_or_exit(config_path)
    url = database or config.storage.url
    _configure_logging(config, "info")
    app = create_alert_logger(lambda: open_alert_store(url), token=os.environ.get(token_env))
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
