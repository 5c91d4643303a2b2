"""Ollama native answers → OpenAI shapes: a whole ``/api/chat`` response, NDJSON stream
lines, ``/api/embed``. Tool calls arrive whole (arguments as objects, often without ids:
the adapter's id factory makes them); ``done_reason`` ``length`` → ``length``, any tool
call → ``tool_calls``; usage from ``prompt_eval_count`` / ``eval_count``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hybridinference.adapters.base import JSONObject
from hybridinference.adapters.http import scrub_credentials
from hybridinference.adapters.parts import dump_arguments, encode_embedding, set_reasoning
from hybridinference.errors import UpstreamProtocolError, UpstreamServerError


def usage_to_openai(data: JSONObject) -> JSONObject:
    prompt = _int(data.get("prompt_eval_count"))
    completion = _int(data.get("eval_count"))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def tool_calls(message: JSONObject, new_id: Callable[[], str], start: int = 0) -> list[JSONObject]:
    calls = []
    for offset, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        calls.append(
            {
                "index": start + offset,
                "id": call.get("id") or new_id(),
                "type": "function",
                "function": {
                    "name": function.get("name", ""),
                    "arguments": dump_arguments(function.get("arguments")),
                },
            }
        )
    return calls


def finish_reason(done_reason: str | None, had_calls: bool) -> str:
    if had_calls:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def from_ollama(data: JSONObject, created: int, new_id: Callable[[], str]) -> JSONObject:
    native = data.get("message") or {}
    calls = tool_calls(native, new_id)
    for call in calls:
        del call["index"]
    message: JSONObject = {
        "role": "assistant",
        "content": native.get("content") or ("" if not calls else None),
    }
    if calls:
        message["tool_calls"] = calls
    if native.get("thinking"):
        set_reasoning(message, native["thinking"])
    choice = {
        "index": 0,
        "message": message,
        "finish_reason": finish_reason(data.get("done_reason"), bool(calls)),
        "logprobs": None,
        "native_finish_reason": data.get("done_reason"),
    }
    return {
        "id": "chatcmpl-" + new_id(),
        "object": "chat.completion",
        "created": created,
        "model": data.get("model", ""),
        "system_fingerprint": "fp_ollama",
        "choices": [choice],
        "usage": usage_to_openai(data),
    }


@dataclass(slots=True)
class OllamaStreamDecoder:
    """Feed it each NDJSON object; it returns OpenAI chunks."""

    route: str
    created: int
    new_id: Callable[[], str]
    base: JSONObject = field(default_factory=dict)
    tool_calls: int = 0
    finished: bool = False

    def feed(self, data: JSONObject) -> list[JSONObject]:
        if "error" in data:
            detail = scrub_credentials(str(data["error"]))
            raise UpstreamServerError(f"{self.route} failed mid-stream: {detail}"[:600])
        try:
            return self._feed(data)
        except (AttributeError, TypeError, KeyError, ValueError) as exc:  # fields of odd types
            raise UpstreamProtocolError(f"{self.route} sent a malformed stream line") from exc

    def _feed(self, data: JSONObject) -> list[JSONObject]:
        chunks: list[JSONObject] = []
        if not self.base:
            self.base = {
                "id": "chatcmpl-" + self.new_id(),
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": data.get("model", ""),
                "system_fingerprint": "fp_ollama",
            }
            chunks.append(self._chunk({"role": "assistant", "content": ""}))
        message = data.get("message") or {}
        if message.get("thinking"):
            delta: JSONObject = {}
            set_reasoning(delta, message["thinking"])
            chunks.append(self._chunk(delta))
        if message.get("content"):
            chunks.append(self._chunk({"content": message["content"]}))
        calls = tool_calls(message, self.new_id, self.tool_calls)
        if calls:
            self.tool_calls += len(calls)
            chunks.append(self._chunk({"tool_calls": calls}))
        if data.get("done"):
            self.finished = True
            done_reason = data.get("done_reason")
            finish = self._chunk({}, finish_reason(done_reason, self.tool_calls > 0))
            finish["choices"][0]["native_finish_reason"] = done_reason
            chunks.append(finish)
            chunks.append({**self.base, "choices": [], "usage": usage_to_openai(data)})
        return chunks

    def _chunk(self, delta: JSONObject, finish: str | None = None) -> JSONObject:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {**self.base, "choices": [choice]}


def from_ollama_embed(data: JSONObject, model: str, encoding: str | None) -> JSONObject:
    items = []
    for index, vector in enumerate(data.get("embeddings") or ()):
        embedding = encode_embedding(vector, encoding)
        items.append({"object": "embedding", "index": index, "embedding": embedding})
    prompt = _int(data.get("prompt_eval_count"))
    return {
        "object": "list",
        "data": items,
        "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }


def _int(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
