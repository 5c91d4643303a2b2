"""Relay an upstream stream to the client as SSE: chunk by chunk, usage captured for the
log, and a failure after the first byte sent in-band (the status is already 200)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from hybridinference.adapters.base import JSONObject
from hybridinference.adapters.sse import DONE, encode_event
from hybridinference.errors import GatewayError, UpstreamProtocolError
from hybridinference.gateway.exchange import Exchange
from hybridinference.gateway.responses import error_envelope
from hybridinference.routing.manager import OpenStream
from hybridinference.schemas.usage import Usage

logger = logging.getLogger(__name__)


async def relay(
    opened: OpenStream, exchange: Exchange, public_model: str, include_usage: bool
) -> AsyncIterator[bytes]:
    trace = exchange.trace
    trace.mark_first_token()
    texts: list[str] | None = [] if exchange.content is not None else None
    try:
        chunk: JSONObject | None = opened.first
        rest = opened.rest
        while chunk is not None:
            out = _prepare(chunk, exchange, public_model, include_usage, texts)
            if out is not None:
                yield out
            chunk = await anext(rest, None)
        yield DONE
    except GatewayError as exc:
        logger.warning(
            "stream %s failed after the first byte: %s", exchange.request_id, exc.message
        )
        exchange.finish(exc.status_code, exc)
        yield encode_event(error_envelope(exc))
    except Exception:  # a bug must not leave the client hanging
        logger.exception("stream %s failed", exchange.request_id)
        error = UpstreamProtocolError("The stream failed unexpectedly.")
        exchange.finish(error.status_code, error)
        yield encode_event(error_envelope(error))
    else:
        if exchange.content is not None and texts is not None:
            exchange.content["response"] = "".join(texts)
        exchange.finish(200)
    finally:
        await opened.aclose()


def _prepare(
    chunk: JSONObject,
    exchange: Exchange,
    public_model: str,
    include_usage: bool,
    texts: list[str] | None,
) -> bytes | None:
    usage = chunk.get("usage")
    if usage:
        exchange.trace.usage = Usage.from_openai(usage)
        if not include_usage:
            if not chunk.get("choices"):
                return None  # the usage-only chunk the gateway asked for on its own behalf
            del chunk["usage"]
    elif include_usage is False and "usage" in chunk:
        del chunk["usage"]
    if texts is not None:
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            if isinstance(text, str):
                texts.append(text)
    chunk["model"] = public_model
    return encode_event(chunk)
