"""The built-in ``demo`` provider: a deterministic simulated model, no network, no key.

The same request always gets the same answer; time to first token and token rate come
from config, so the quickstart behaves like a (very small) real model, streaming included.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from hybridinference.adapters.base import Endpoint, JSONObject, UpstreamCall
from hybridinference.config.schema import DemoProviderConfig

VOCABULARY = (
    "the",
    "gateway",
    "routes",
    "every",
    "request",
    "to",
    "a",
    "model",
    "that",
    "answers",
    "quickly",
    "and",
    "cheaply",
    "local",
    "engines",
    "serve",
    "first",
    "and",
    "cloud",
    "providers",
    "take",
    "the",
    "overflow",
    "while",
    "tokens",
    "stream",
    "back",
    "to",
    "you",
    "one",
    "by",
    "one",
    "hybrid",
    "inference",
    "keeps",
    "latency",
    "low",
)
EMBEDDING_DIMENSIONS = 16


class DemoAdapter:
    kind = "demo"

    def __init__(self, name: str, config: DemoProviderConfig) -> None:
        self.name = name
        self._config = config

    def _limit(self, call: UpstreamCall) -> tuple[int, str]:
        """How many tokens to produce, and the finish reason that goes with it."""
        requested = call.body.get("max_completion_tokens") or call.body.get("max_tokens")
        if isinstance(requested, int) and 0 < requested <= self._config.max_tokens:
            return requested, "length"
        return self._config.max_tokens, "stop"

    def _tokens(self, call: UpstreamCall) -> list[str]:
        body = call.body
        limit, _ = self._limit(call)
        state = int.from_bytes(hashlib.sha256(_prompt_text(body).encode()).digest()[:8], "big")
        words = []
        for i in range(limit):
            state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
            word = VOCABULARY[(state >> 33) % len(VOCABULARY)]
            words.append(word if i == 0 else " " + word)
        return words

    def _usage(self, call: UpstreamCall, completion_tokens: int) -> dict[str, int]:
        prompt_tokens = max(1, len(_prompt_text(call.body).split()))
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    async def complete(self, call: UpstreamCall) -> JSONObject:
        if call.endpoint is Endpoint.EMBEDDINGS:
            return _embeddings(call.body)
        tokens = self._tokens(call)
        await asyncio.sleep(
            self._config.ttft_ms / 1000 + len(tokens) / self._config.tokens_per_second
        )
        text = "".join(tokens)
        created = int(time.time())
        usage = self._usage(call, len(tokens))
        _, finish = self._limit(call)
        return BUILDERS[call.endpoint](call, text, finish, created, usage)

    async def stream(self, call: UpstreamCall) -> AsyncIterator[JSONObject]:
        tokens = self._tokens(call)
        created = int(time.time())
        chat = call.endpoint is Endpoint.CHAT
        chunk_object = "chat.completion.chunk" if chat else "text_completion"
        base = {
            "id": f"demo-{call.request_id}",
            "object": chunk_object,
            "created": created,
            "model": call.body.get("model", "demo"),
        }
        await asyncio.sleep(self._config.ttft_ms / 1000)
        if chat:
            yield {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
            }
        for token in tokens:
            choice: dict[str, Any] = (
                {"index": 0, "delta": {"content": token}, "finish_reason": None}
                if chat
                else {"index": 0, "text": token, "finish_reason": None, "logprobs": None}
            )
            yield {**base, "choices": [choice]}
            await asyncio.sleep(1 / self._config.tokens_per_second)
        _, finish = self._limit(call)
        last: dict[str, Any] = (
            {"index": 0, "delta": {}, "finish_reason": finish}
            if chat
            else {"index": 0, "text": "", "finish_reason": finish, "logprobs": None}
        )
        yield {**base, "choices": [last]}
        yield {**base, "choices": [], "usage": self._usage(call, len(tokens))}

    async def probe(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


def _prompt_text(body: Mapping[str, Any]) -> str:
    if "messages" in body:
        parts = []
        for message in body["messages"]:
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(str(p.get("text", "")) for p in content if isinstance(p, dict))
        return "\n".join(parts)
    prompt = body.get("prompt", body.get("input", ""))
    return prompt if isinstance(prompt, str) else str(prompt)


def _chat(
    call: UpstreamCall, text: str, finish: str, created: int, usage: dict[str, int]
) -> JSONObject:
    return {
        "id": f"demo-{call.request_id}",
        "object": "chat.completion",
        "created": created,
        "model": call.body.get("model", "demo"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


def _completion(
    call: UpstreamCall, text: str, finish: str, created: int, usage: dict[str, int]
) -> JSONObject:
    return {
        "id": f"demo-{call.request_id}",
        "object": "text_completion",
        "created": created,
        "model": call.body.get("model", "demo"),
        "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
        "usage": usage,
    }


BUILDERS: Mapping[Endpoint, Callable[[UpstreamCall, str, str, int, dict[str, int]], JSONObject]] = {
    Endpoint.CHAT: _chat,
    Endpoint.COMPLETIONS: _completion,
}


def _embeddings(body: Mapping[str, Any]) -> JSONObject:
    raw = body.get("input", "")
    inputs = [raw] if isinstance(raw, str) or (raw and isinstance(raw[0], int)) else list(raw)
    data = []
    tokens = 0
    for index, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(map(str, item))
        tokens += max(1, len(text.split()))
        digest = hashlib.sha256(text.encode()).digest()
        vector = [(b - 127.5) / 127.5 for b in digest[:EMBEDDING_DIMENSIONS]]
        embedding: list[float] | str = vector
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": body.get("model", "demo"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
