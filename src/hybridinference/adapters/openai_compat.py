"""Adapter for OpenAI-compatible upstreams: vLLM, SGLang, Ollama /v1, OpenAI, DeepSeek,
Zhipu/GLM, Chutes, Featherless, OpenRouter.

The body is forwarded as the client sent it (unknown fields included); only ``model``
is aimed at the upstream, and streams always ask for usage so that it can be logged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import orjson

from hybridinference.adapters.base import Endpoint, JSONObject, UpstreamCall
from hybridinference.adapters.h1 import FINISH_SECONDS, ConnectionPool
from hybridinference.adapters.http import (
    error_for_status,
    map_transport_errors,
    remaining,
    scrub_credentials,
)
from hybridinference.adapters.profiles import PROFILES
from hybridinference.adapters.sse import SSEParser
from hybridinference.adapters.upstream import (
    MAX_ERROR_BYTES,
    MAX_LINE_BYTES,
    MAX_RESPONSE_BYTES,
    health_probe,
)
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
        data = orjson.dumps(self._prepare(call.endpoint, call.body))
        with map_transport_errors(self.name):
            response = await self._pool.request(
                b"POST",
                PATHS[call.endpoint],
                self._headers,
                data,
                remaining(call.deadline, call.first_byte_timeout),
            )
            try:
                body = await response.read(
                    MAX_RESPONSE_BYTES, remaining(call.deadline, call.idle_timeout)
                )
            finally:
                response.release()
            if response.status >= 300:
                raise error_for_status(
                    response.status, body, response.headers.get("retry-after"), self.name
                )
            result = orjson.loads(body)
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
        with map_transport_errors(self.name):
            response = await self._pool.request(
                b"POST",
                PATHS[call.endpoint],
                self._headers,
                orjson.dumps(body),
                remaining(call.deadline, call.first_byte_timeout),
            )
            try:
                if response.status >= 300:
                    error_body = await response.read(
                        MAX_ERROR_BYTES, remaining(call.deadline, call.idle_timeout)
                    )
                    raise error_for_status(
                        response.status,
                        error_body,
                        response.headers.get("retry-after"),
                        self.name,
                    )
                parser = SSEParser()
                # the first chunk must come within first_byte; every later one within idle
                wait = call.first_byte_timeout
                finished = False
                while True:
                    line = await response.readline(MAX_LINE_BYTES, remaining(call.deadline, wait))
                    event = parser.feed_line(line) if line else parser.finish()
                    if event is not None:
                        if event.data == "[DONE]":
                            await response.finish(FINISH_SECONDS)  # pool the connection
                            return
                        chunk = self._decode_chunk(event.data)
                        finished = finished or _has_finish_reason(chunk)
                        if fix_chunk is not None:
                            fix_chunk(chunk)
                        wait = call.idle_timeout
                        yield chunk
                    if not line:
                        if finished:
                            return
                        raise UpstreamProtocolError(f"{self.name} ended the stream early")
            finally:
                # A stream left before its end closes the connection, so the upstream sees
                # the cancellation; a complete one goes back to the pool.
                response.release()

    def _decode_chunk(self, data: str) -> JSONObject:
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
