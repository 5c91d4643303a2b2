"""``flags.reasoning_passthrough`` off: the reasoning a model produced is not passed on.

Removes ``reasoning_content``, ``reasoning`` and ``reasoning_details`` from every choice's
``message`` (JSON answers) or ``delta`` (stream chunks) on the OpenAI surface. The stream
wrapper keeps the served stream's contract: closing it closes the upstream stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from hybridinference.adapters.base import JSONObject
from hybridinference.routing.openers import OpenStream

FIELDS = ("reasoning_content", "reasoning", "reasoning_details")


def strip_reasoning(payload: JSONObject) -> JSONObject:
    """In place, and returned: ``payload`` without reasoning fields."""
    choices = payload.get("choices")
    if isinstance(choices, list):
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            for part in ("message", "delta"):
                target = choice.get(part)
                if isinstance(target, dict):
                    for name in FIELDS:
                        target.pop(name, None)
    return payload


class _Stripped:
    def __init__(self, inner: AsyncIterator[JSONObject]) -> None:
        self._inner = inner

    def __aiter__(self) -> _Stripped:
        return self

    async def __anext__(self) -> JSONObject:
        return strip_reasoning(await anext(self._inner))

    async def aclose(self) -> None:
        closer = getattr(self._inner, "aclose", None)
        if closer is not None:
            await closer()


def strip_stream(opened: OpenStream) -> OpenStream:
    return OpenStream(opened.route, strip_reasoning(opened.first), _Stripped(opened.rest))
