"""Adapter for Ollama's native API: ``/api/chat`` (NDJSON streaming, ``done`` /
``done_reason``), ``/api/embed``, health via ``/api/tags``. Ollama's OpenAI-compatible
``/v1`` is served by the ``openai`` kind instead; the native API is what lets the gateway
set ``num_ctx``, ``keep_alive`` and other options per request."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from hybridinference.adapters.base import Endpoint, JSONObject, UpstreamCall
from hybridinference.adapters.h1 import ConnectionPool
from hybridinference.adapters.ollama_request import (
    SUPPORTED,
    OllamaDefaults,
    to_ollama,
    to_ollama_embed,
)
from hybridinference.adapters.ollama_response import (
    OllamaStreamDecoder,
    from_ollama,
    from_ollama_embed,
)
from hybridinference.adapters.params import EMBEDDING_PARAMS, ParamPolicy
from hybridinference.adapters.parts import new_call_id
from hybridinference.adapters.upstream import (
    decode_json,
    health_probe,
    lines,
    open_stream,
    post_json,
)
from hybridinference.config.schema import OllamaProviderConfig
from hybridinference.errors import UpstreamProtocolError, UpstreamRejected


class OllamaAdapter:
    kind = "ollama"

    def __init__(
        self,
        name: str,
        config: OllamaProviderConfig,
        pool: ConnectionPool,
        api_key: str | None,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_call_id,
    ) -> None:
        self.name = name
        self._pool = pool
        self._clock = clock
        self._new_id = new_id
        drop = config.drop_unsupported_params
        self._chat = ParamPolicy.of(name, self.kind, SUPPORTED, drop)
        self._embed = ParamPolicy.of(name, self.kind, EMBEDDING_PARAMS, drop)
        options = dict(config.options)
        if config.num_ctx is not None:
            options["num_ctx"] = config.num_ctx
        self._defaults = OllamaDefaults(keep_alive=config.keep_alive, options=options)
        headers = {"Content-Type": "application/json", **config.headers}
        if api_key:  # only Ollama's hosted service wants one
            headers["Authorization"] = f"Bearer {api_key}"
        self._headers = ConnectionPool.header_block(headers)

    def _chat_body(self, call: UpstreamCall, stream: bool) -> JSONObject:
        if call.endpoint is not Endpoint.CHAT:
            raise UpstreamRejected(
                f"Provider '{self.name}' (ollama) serves chat completions and embeddings only.",
                status_code=400,
                code="unsupported_endpoint",
            )
        native = to_ollama(call.body, self._chat, self._defaults)
        native["stream"] = stream
        return native

    async def complete(self, call: UpstreamCall) -> JSONObject:
        if call.endpoint is Endpoint.EMBEDDINGS:
            native = to_ollama_embed(call.body, self._embed, self._defaults)
            data = await post_json(self._pool, "/api/embed", native, self._headers, call, self.name)
            if not isinstance(data, dict) or not isinstance(data.get("embeddings"), list):
                raise UpstreamProtocolError(f"{self.name} sent a response of the wrong shape")
            model = str(call.body.get("model", ""))
            return from_ollama_embed(data, model, call.body.get("encoding_format"))
        native = self._chat_body(call, stream=False)
        data = await post_json(self._pool, "/api/chat", native, self._headers, call, self.name)
        if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
            raise UpstreamProtocolError(f"{self.name} sent a response of the wrong shape")
        return from_ollama(data, int(self._clock()), self._new_id)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[JSONObject]:
        native = self._chat_body(call, stream=True)
        decoder = OllamaStreamDecoder(self.name, int(self._clock()), self._new_id)
        async with open_stream(
            self._pool, "/api/chat", native, self._headers, call, self.name
        ) as response:
            async for line in lines(response, call):
                if not line.strip():
                    continue
                data = decode_json(line, self.name)
                if not isinstance(data, dict):
                    raise UpstreamProtocolError(f"{self.name} sent a malformed stream line")
                for chunk in decoder.feed(data):
                    yield chunk
                if decoder.finished:
                    return
        raise UpstreamProtocolError(f"{self.name} ended the stream early")

    async def probe(self) -> None:
        await health_probe(self._pool, "/api/tags", self._headers, self.name)

    async def aclose(self) -> None:
        await self._pool.aclose()
