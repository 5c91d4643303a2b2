"""Relay an upstream (OpenAI-shaped) stream to an Anthropic client as named SSE events;
usage captured for the log; a failure after the first byte becomes an ``error`` event."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from hybridinference.adapters.anthropic_stream import Event, OpenAIToAnthropic
from hybridinference.adapters.base import JSONObject
from hybridinference.adapters.sse import encode_named_event
from hybridinference.errors import GatewayError, UpstreamProtocolError
from hybridinference.gateway.anthropic_errors import anthropic_error_body
from hybridinference.gateway.exchange import Exchange
from hybridinference.routing.manager import OpenStream
from hybridinference.schemas.usage import Usage

logger = logging.getLogger(__name__)


def _encode(events: list[Event]) -> bytes:
    return b"".join(encode_named_event(name, data) for name, data in events)


async def relay_messages(
    opened: OpenStream, exchange: Exchange, public_model: str
) -> AsyncIterator[bytes]:
    trace = exchange.trace
    trace.mark_first_token()
    encoder = OpenAIToAnthropic("msg_" + exchange.request_id.replace("-", ""), public_model)
    texts: list[str] | None = [] if exchange.content is not None else None
    try:
        yield _encode(encoder.start())
        chunk: JSONObject | None = opened.first
        while chunk is not None:
            if chunk.get("usage"):
                trace.usage = Usage.from_openai(chunk["usage"])
            if texts is not None:
                for choice in chunk.get("choices") or ():
                    text = (choice.get("delta") or {}).get("content")
                    if isinstance(text, str):
                        texts.append(text)
            events = encoder.feed(chunk)
            if events:
                yield _encode(events)
            chunk = await anext(opened.rest, None)
        yield _encode(encoder.end())
    except GatewayError as exc:
        logger.warning(
            "stream %s failed after the first byte: %s", exchange.request_id, exc.message
        )
        exchange.finish(exc.status_code, exc)
        yield encode_named_event("error", anthropic_error_body(exc, exchange.request_id))
    except Exception:  # a bug must not leave the client hanging
        logger.exception("stream %s failed", exchange.request_id)
        error = UpstreamProtocolError("The stream failed unexpectedly.")
        exchange.finish(error.status_code, error)
        yield encode_named_event("error", anthropic_error_body(error, exchange.request_id))
    else:
        if exchange.content is not None and texts is not None:
            exchange.content["response"] = "".join(texts)
        exchange.finish(200)
    finally:
        await opened.aclose()
