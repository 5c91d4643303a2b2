"""Adapter for OpenAI-compatible upstreams: vLLM, SGLang, Ollama /v1, OpenAI, DeepSeek,
Zhipu/GLM, Chutes, Featherless, OpenRouter.

The body is forwarded as the client sent it (unknown fields included); only ``model``
is aimed at the upstream, and streams always ask for usage so that it can be logged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

import orjson

from hybridinference.adapters.base import Endpoint, JSONObject, UpstreamCall
from hybridinference.adapters.h1 import ConnectionPool
from hybridinference.adapters.http import scrub_credentials
from hybridinference.adapters.profiles import PROFILES
from hybridinference.adapters.sse import SSEParser
from hybridinference.adapters.upstream import health_probe, lines, open_stream, post_json
from hybridinference.config.schema import OpenAIProviderConfig
from hybridinference.errors import UpstreamProtocolError, UpstreamServerError

PATHS: Mapping[Endpoint, str] = {
    Endpoint.CHAT: "/chat/completions",
    Endpoint.COMPLETIONS: "/completions",
    Endpoint.EMBEDDINGS: "/embeddings",
}
#: the top-level field a well-formed response must have, per endpoint
REQUIRED_FIELD: Mapping[Endpoint, str] = {
    Endpoint.CHAT: "choices",
    Endpoint.COMPLETIONS: "choices",
    Endpoint.EMBEDDINGS: "data",
}


class OpenAICompatAdapter:
    kind = "openai"

    def __init__(
        self,
        name: str,
        config: OpenAIProviderConfig,
        pool: ConnectionPool,
        api_key: str | None,
    ) -> None:
        self.name = name
        self._pool = pool
        self._profile = PROFILES[config.profile]
        self._drop = frozenset(config.drop_unsupported_params)
        headers = {"Content-Type": "application/json", **config.headers}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._headers = ConnectionPool.header_block(headers)

    async def complete(self, call: UpstreamCall) -> JSONObject:
        body = self._prepare(call.endpoint, call.body)
        result = await post_json(
            self._pool, PATHS[call.endpoint], body, self._headers, call, self.name
        )
        if not isinstance(result, dict) or REQUIRED_FIELD[call.endpoint] not in result:
            raise UpstreamProtocolError(f"{self.name} sent a response of the wrong shape")
        if self._profile.response is not None and call.endpoint is Endpoint.CHAT:
            self._profile.response(result)
        return result

    def _prepare(self, endpoint: Endpoint, body: JSONObject) -> JSONObject:
        """The profile's request fixes; nothing at all for the generic profile."""
        if self._drop:
            body = {k: v for k, v in body.items() if k not in self._drop}
        if endpoint is Endpoint.CHAT:
            body = self._profile.fix_request(body, self.name)
        return body

    async def stream(self, call: UpstreamCall) -> AsyncIterator[JSONObject]:
        body = dict(call.body)
        body["stream"] = True
        options = body.get("stream_options")
        body["stream_options"] = {
            **(options if isinstance(options, dict) else {}),
            "include_usage": True,
        }
        body = self._prepare(call.endpoint, body)
        fix_chunk = self._profile.chunk if call.endpoint is Endpoint.CHAT else None
        parser = SSEParser()
        finished = False
        async with open_stream(
            self._pool, PATHS[call.endpoint], body, self._headers, call, self.name
        ) as response:
            async for line in lines(response, call):
                event = parser.feed_line(line)
                if event is not None and event.data == "[DONE]":
                    return  # open_stream waits a moment for the body's end, to pool it
                if event is not None:
                    chunk = self._decode_chunk(event.data, fix_chunk)
                    finished = finished or _has_finish_reason(chunk)
                    yield chunk
            last = parser.finish()  # an event not followed by a blank line
            if last is not None and last.data != "[DONE]":
                chunk = self._decode_chunk(last.data, fix_chunk)
                finished = finished or _has_finish_reason(chunk)
                yield chunk
        if not finished:
            raise UpstreamProtocolError(f"{self.name} ended the stream early")

    def _decode_chunk(self, data: str, fix: Callable[[JSONObject], None] | None) -> JSONObject:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(f"{self.name} sent a malformed stream event") from exc
        if not isinstance(chunk, dict):
            raise UpstreamProtocolError(f"{self.name} sent a malformed stream event")
        error = chunk.get("error")
        if error is not None:
            message = error.get("message") if isinstance(error, dict) else str(error)
            detail = scrub_credentials(str(message))
            raise UpstreamServerError(f"{self.name} failed mid-stream: {detail}"[:600])
        if fix is not None:
            fix(chunk)
        return chunk

    async def probe(self) -> None:
        await health_probe(self._pool, "/models", self._headers, self.name)

    async def aclose(self) -> None:
        await self._pool.aclose()


def _has_finish_reason(chunk: JSONObject) -> bool:
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return False
    return any(isinstance(c, dict) and c.get("finish_reason") for c in choices)
