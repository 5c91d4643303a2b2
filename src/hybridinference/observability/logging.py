"""Structured logs: one JSON object per line with the request id and trace id of the
request being served, and every known secret scrubbed from the line before it is written.

The request id travels in a ``ContextVar`` (set by ``ObservabilityMiddleware`` for the
duration of a request); a context variable is the one process-wide handle here, and it is
how log lines from deep inside routing or an adapter learn which request they belong to.
``configure_logging`` is called once per process by the CLI, never by ``create_app``.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any, TextIO

import orjson
from opentelemetry import trace

from hybridinference.config.schema import GatewayConfig

REQUEST_ID: ContextVar[str | None] = ContextVar("hybridinference_request_id", default=None)
REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 6  # shorter values would scrub ordinary words
SECRET_ENV_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
# Things that look like credentials even when their value is not known in advance.
PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=\-]{8,}"),
    re.compile(r"\b(sk-|hi-|sk-ant-)[A-Za-z0-9_\-]{20,}"),
    re.compile(
        r"(?i)((?:api[_-]?key|x-api-key|authorization|token)[\"']?\s*[:=]\s*[\"']?)"
        r"(?!bearer\b|\[REDACTED\])[^\s\"',}]{6,}"
    ),
)
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's ANSI-coloured duplicate of msg
}


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        unique = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
        self._secrets = sorted(unique, key=len, reverse=True)  # longest first

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        for pattern in PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
        return text


def current_trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            entry["request_id"] = request_id
        trace_id = current_trace_id()
        if trace_id is not None:
            entry["trace_id"] = trace_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        text = orjson.dumps(entry, default=str).decode()
        return self._redact(text)


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = REQUEST_ID.get()
        return self._redact(f"{line} [request_id={request_id}]" if request_id else line)


FORMATTERS = {"json": JsonFormatter, "text": TextFormatter}


def secret_values(config: GatewayConfig, env: Mapping[str, str]) -> list[str]:
    """Every value the logs must never show: the env vars the config names for keys and
    tokens, and any env var whose name says it is a secret."""
    names = {config.auth.admin_token_env, config.auth.key_secret_env}
    if config.observability.metrics_token_env:
        names.add(config.observability.metrics_token_env)
    for provider in config.providers.values():
        key_env = getattr(provider, "api_key_env", None)
        if key_env:
            names.add(key_env)
    names.update(n for n in env if n.upper().endswith(SECRET_ENV_SUFFIXES))
    return [env[n] for n in names if env.get(n)]


def configure_logging(
    fmt: str, level: str, secrets: Iterable[str], stream: TextIO | None = None
) -> logging.Handler:
    """Route every log record (ours, uvicorn's) through one redacting handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(FORMATTERS[fmt](Redactor(secrets)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):  # uvicorn.access: uvicorn's access_log decides
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    return handler
