"""Adapter for Google Gemini's native API: generateContent, streamGenerateContent
(``alt=sse``: data-only events, no terminator) and batchEmbedContents, key in
``x-goog-api-key``. Translation lives in ``gemini_request`` / ``gemini_response``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import quote

from hybridinference.adapters.base import Endpoint, JSONObject, UpstreamCall
from hybridinference.adapters.gemini_request import SUPPORTED, to_gemini, to_gemini_embeddings
from hybridinference.adapters.gemini_response import (
    GeminiStreamDecoder,
    blocked,
    from_gemini,
    from_gemini_embeddings,
)
from hybridinference.adapters.h1 import ConnectionPool
from hybridinference.adapters.params import EMBEDDING_PARAMS, ParamPolicy
from hybridinference.adapters.parts import new_call_id
from hybridinference.adapters.sse import SSEParser
from hybridinference.adapters.upstream import (
    decode_json,
    health_probe,
    lines,
    open_stream,
    post_json,
)
from hybridinference.config.schema import GeminiProviderConfig
from hybridinference.errors import UpstreamProtocolError, UpstreamRejected

#: kept as they are in a model name's path segment (RFC 3986 sub-delims, "@"); the rest
#: is percent-encoded, as aiohttp's URL handling used to do
MODEL_SAFE = "!$&'()*+,;=@"


class GeminiAdapter:
    kind = "gemini"

    def __init__(
        self,
        name: str,
        config: GeminiProviderConfig,
        pool: ConnectionPool,
        api_key: str | None,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = new_call_id,
    ) -> None:
        self.name = name
        self._version = f"/{quote(config.api_version, safe='')}"
        self._pool = pool
        self._clock = clock
        self._new_id = new_id
        drop = config.drop_unsupported_params
        self._chat = ParamPolicy.of(name, self.kind, SUPPORTED, drop)
        self._embed = ParamPolicy.of(name, self.kind, EMBEDDING_PARAMS, drop)
        headers = {"Content-Type": "application/json", **config.headers}
        if api_key:
            headers["x-goog-api-key"] = api_key
        self._headers = ConnectionPool.header_block(headers)

    def _path(self, call: UpstreamCall, method: str) -> str:
        # the model is one path segment: a "/", "?" or "%" in it is encoded, never obeyed
        model = quote(str(call.body.get("model", "")), safe=MODEL_SAFE)
        return f"{self._version}/models/{model}:{method}"

    async def complete(self, call: UpstreamCall) -> JSONObject:
        model = str(call.body.get("model", ""))
        if call.endpoint is Endpoint.EMBEDDINGS:
            native = to_gemini_embeddings(call.body, model, self._embed)
            path = self._path(call, "batchEmbedContents")
            data = await post_json(self._pool, path, native, self._headers, call, self.name)
            if not isinstance(data, dict) or not isinstance(data.get("embeddings"), list):
                raise UpstreamProtocolError(f"{self.name} sent a response of the wrong shape")
            return from_gemini_embeddings(data, model, call.body.get("encoding_format"))
        native = to_gemini(self._chat_body(call), self._chat)
        path = self._path(call, "generateContent")
        data = await post_json(self._pool, path, native, self._headers, call, self.name)
        if not isinstance(data, dict):
            raise UpstreamProtocolError(f"{self.name} sent a response of the wrong shape")
        blocked(data, self.name)
        return from_gemini(data, model, int(self._clock()), self._new_id)

    def _chat_body(self, call: UpstreamCall) -> JSONObject:
        if call.endpoint is not Endpoint.CHAT:
            raise UpstreamRejected(
                f"Provider '{self.name}' (gemini) serves chat completions and embeddings only.",
                status_code=400,
                code="unsupported_endpoint",
            )
        return call.body

    async def stream(self, call: UpstreamCall) -> AsyncIterator[JSONObject]:
        native = to_gemini(self._chat_body(call), self._chat)
        path = self._path(call, "streamGenerateContent") + "?alt=sse"
        model = str(call.body.get("model", ""))
        decoder = GeminiStreamDecoder(self.name, model, int(self._clock()), self._new_id)
        parser = SSEParser()
        async with open_stream(
            self._pool, path, native, self._headers, call, self.name
        ) as response:
            async for line in lines(response, call):
                event = parser.feed_line(line)
                if event is None:
                    continue
                data = decode_json(event.data, self.name)
                if not isinstance(data, dict):
                    raise UpstreamProtocolError(f"{self.name} sent a malformed stream event")
                for chunk in decoder.feed(data):
                    yield chunk
            last = parser.finish()
            if last is not None:
                for chunk in decoder.feed(decode_json(last.data, self.name)):
                    yield chunk
        if not decoder.finished:
            raise UpstreamProtocolError(f"{self.name} ended the stream early")
        for chunk in decoder.end():
            yield chunk

    async def probe(self) -> None:
        await health_probe(self._pool, f"{self._version}/models", self._headers, self.name)

    async def aclose(self) -> None:
        await self._pool.aclose()
