"""Adapter for the Anthropic Messages API: OpenAI-shaped chat in, OpenAI-shaped out.

The translation lives in ``anthropic_request`` / ``anthropic_response`` /
``anthropic_stream``; this module owns the HTTP side (headers, paths, the stream loop).
Upstream statuses map through ``http.error_for_status``: 429 and 529 (overloaded) are
retryable, other 4xx are passed through as the client's fault.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from hybridinference.adapters.anthropic_request import SUPPORTED, AnthropicDefaults, to_anthropic
from hybridinference.adapters.anthropic_response import from_anthropic
from hybridinference.adapters.anthropic_stream import AnthropicToOpenAI
from hybridinference.adapters.base import Endpoint, JSONObject, UpstreamCall
from hybridinference.adapters.h1 import ConnectionPool
from hybridinference.adapters.params import ParamPolicy
from hybridinference.adapters.sse import SSEParser
from hybridinference.adapters.upstream import (
    decode_json,
    health_probe,
    lines,
    open_stream,
    post_json,
)
from hybridinference.config.schema import AnthropicProviderConfig
from hybridinference.errors import UpstreamProtocolError, UpstreamRejected

MESSAGES = "/v1/messages"


class AnthropicAdapter:
    kind = "anthropic"

    def __init__(
        self,
        name: str,
        config: AnthropicProviderConfig,
        pool: ConnectionPool,
        api_key: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._config = config
        self._pool = pool
        self._clock = clock
        self._policy = ParamPolicy.of(name, self.kind, SUPPORTED, config.drop_unsupported_params)
        headers = {
            "Content-Type": "application/json",
            "anthropic-version": config.anthropic_version,
            **config.headers,
        }
        if api_key:
            headers["x-api-key"] = api_key
        self._headers = ConnectionPool.header_block(headers)

    def _native(self, call: UpstreamCall) -> JSONObject:
        if call.endpoint is not Endpoint.CHAT:
            raise UpstreamRejected(
                f"Provider '{self.name}' (anthropic) serves chat completions only.",
                status_code=400,
                code="unsupported_endpoint",
            )
        model = str(call.body.get("model", ""))
        defaults = AnthropicDefaults(
            self._config.max_tokens.get(model, self._config.default_max_tokens)
        )
        return to_anthropic(call.body, self._policy, defaults)

    async def complete(self, call: UpstreamCall) -> JSONObject:
        native = self._native(call)
        native.pop("stream", None)
        data = await post_json(self._pool, MESSAGES, native, self._headers, call, self.name)
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise UpstreamProtocolError(f"{self.name} sent a response of the wrong shape")
        return from_anthropic(data, int(self._clock()))

    async def stream(self, call: UpstreamCall) -> AsyncIterator[JSONObject]:
        native = self._native(call)
        native["stream"] = True
        decoder = AnthropicToOpenAI(self.name, int(self._clock()))
        parser = SSEParser()
        async with open_stream(
            self._pool, MESSAGES, native, self._headers, call, self.name
        ) as response:
            async for line in lines(response, call):
                event = parser.feed_line(line)
                if event is None:
                    continue
                data = decode_json(event.data, self.name)
                if not isinstance(data, dict):
                    raise UpstreamProtocolError(f"{self.name} sent a malformed stream event")
                for chunk in decoder.feed(event.event, data):
                    yield chunk
                if data.get("type") == "message_stop":
                    return
            if not decoder.finished:
                raise UpstreamProtocolError(f"{self.name} ended the stream early")

    async def probe(self) -> None:
        await health_probe(self._pool, "/v1/models", self._headers, self.name)

    async def aclose(self) -> None:
        await self._pool.aclose()
