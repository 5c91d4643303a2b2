"""CLI for live configuration: ``config reload`` (asks a running gateway to reload its
file) and ``overrides list|set|clear|audit`` (runtime overrides, on the configured
database: running gateways apply a change within ``reload.overrides_interval``).

Registered on the main command group by ``cli``.
"""

from __future__ import annotations

import getpass
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import click
import orjson

from hybridinference.cli_support import config_option as option
from hybridinference.cli_support import load_or_exit
from hybridinference.cli_support import with_store as _store
from hybridinference.config import GatewayConfig, load_config
from hybridinference.errors import ConfigError, GatewayError
from hybridinference.routing.overrides import Override, check_override, stale_reason
from hybridinference.schemas.overrides import OverrideRecord
from hybridinference.storage import Store

ADMIN_TOKEN_ENV = "HYBRIDINFERENCE_ADMIN_TOKEN"  # auth.admin_token_env's default


def _print(data: object) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@click.command("reload")
@option
@click.option("--url", default=None, help="The gateway (default: from server.host/port).")
def config_reload(config_path: str, url: str | None) -> None:
    """Ask a running gateway to reload its config file now (POST /admin/config/reload).
    Other worker processes and replicas pick up the file on their own within
    reload.interval; exit 1 when the file is refused (the message says why)."""
    from hybridinference.dashboard.runner import gateway_url

    try:  # an invalid file is still sent for: the gateway's answer says what is wrong
        config: GatewayConfig | None = load_config(config_path, os.environ)
    except ConfigError as exc:
        if url is None:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        config = None
    token_env = config.auth.admin_token_env if config else ADMIN_TOKEN_ENV
    token = os.environ.get(token_env, "")
    base = url if url is not None or config is None else gateway_url(config)
    target = str(base).rstrip("/") + "/admin/config/reload"
    status, text = _post(target, token)
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        body = None
    if status != 200 or not isinstance(body, dict):
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        click.echo(f"error: {message or text.decode(errors='replace') or status}", err=True)
        sys.exit(1)
    _print(body)


def _post(target: str, token: str) -> tuple[int, bytes]:
    """POST with no body (the standard library: the CLI needs nothing more for one call);
    an HTTP error status is an answer to report, not an exception."""
    request = urllib.request.Request(
        target, data=b"", method="POST", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        click.echo(f"error: cannot reach {target}: {exc}", err=True)
        sys.exit(1)


@click.group("overrides")
def overrides_group() -> None:
    """Runtime overrides on top of the config file (stored in the database, audited)."""


def _row(record: OverrideRecord, config: GatewayConfig) -> dict[str, Any]:
    value = orjson.loads(record.value)
    override = Override(record.model, record.route, record.field, value)
    return {
        "model": record.model,
        "route": record.route or None,
        "field": record.field,
        "value": value,
        "actor": record.actor,
        "reason": record.reason,
        "updated_at": record.updated_at,
        "stale": stale_reason(config, override),
    }


@overrides_group.command("list")
@option
def overrides_list(config_path: str) -> None:
    """Every stored override; ``stale`` says why one does not apply to the file."""
    config = load_or_exit(config_path)
    records = _store(config, lambda store: store.list_overrides())
    _print([_row(r, config) for r in records])


def _value(text: str) -> object:
    """JSON (true, false, 2.5) when it parses, else the text itself (a name)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _actor(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


@overrides_group.command("set")
@option
@click.argument("model")
@click.argument("field")
@click.argument("value")
@click.option("--route", default=None, help="provider/upstream-model (enabled, weight).")
@click.option("--reason", default=None)
@click.option("--actor", default=None, help="Who (default: cli:<login>).")
def overrides_set(
    config_path: str,
    model: str,
    field: str,
    value: str,
    route: str | None,
    reason: str | None,
    actor: str | None,
) -> None:
    """Set an override: FIELD is enabled, weight (with --route), pin, strategy or
    visibility; e.g. ``overrides set chat enabled false --route vllm/llama``."""
    config = load_or_exit(config_path)
    try:
        checked = check_override(config, model, route, field, _value(value))
    except GatewayError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(2)
    record = OverrideRecord(
        checked.model,
        checked.route,
        checked.field,
        orjson.dumps(checked.value).decode(),
        _actor(actor),
        reason,
        time.time(),
    )
    previous = _store(config, lambda store: store.change_override(record, clear=False))
    _print({**_row(record, config), "previous": orjson.loads(previous.value) if previous else None})


@overrides_group.command("clear")
@option
@click.argument("model", required=False)
@click.argument("field", required=False)
@click.option("--route", default=None)
@click.option("--all", "everything", is_flag=True, help="Clear every override.")
@click.option("--actor", default=None)
def overrides_clear(
    config_path: str,
    model: str | None,
    field: str | None,
    route: str | None,
    everything: bool,
    actor: str | None,
) -> None:
    """Clear one override (MODEL FIELD [--route R]) or, with --all, every one."""
    config = load_or_exit(config_path)
    if not everything and (model is None or field is None):
        click.echo("error: name the override (MODEL FIELD [--route R]) or pass --all", err=True)
        sys.exit(2)

    async def clear(store: Store) -> list[OverrideRecord]:
        records = await store.list_overrides()
        key = (model, route or "", field)
        targets = [r for r in records if everything or (r.model, r.route, r.field) == key]
        for r in targets:
            gone = OverrideRecord(
                r.model, r.route, r.field, r.value, _actor(actor), None, time.time()
            )
            await store.change_override(gone, clear=True)
        return targets

    cleared = _store(config, clear)
    if not cleared and not everything:
        click.echo("error: no such override", err=True)
        sys.exit(1)
    _print([_row(r, config) for r in cleared])


@overrides_group.command("audit")
@option
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def overrides_audit(config_path: str, limit: int) -> None:
    """Who changed which override, when, old → new (newest first)."""
    config = load_or_exit(config_path)
    entries = _store(config, lambda store: store.override_audit(limit))
    _print(
        [
            {
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "model": e.model,
                "route": e.route or None,
                "field": e.field,
                "old": None if e.old is None else orjson.loads(e.old),
                "new": None if e.new is None else orjson.loads(e.new),
                "reason": e.reason,
            }
            for e in entries
        ]
    )
