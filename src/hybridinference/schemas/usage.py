"""Token usage, normalised from whatever an upstream reports, and its price."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hybridinference.readonly import readonly


@readonly
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, usage: Mapping[str, Any] | None) -> Usage | None:
        """Read an OpenAI-shaped ``usage`` object; ``None`` when there is none."""
        if type(usage) is not dict and not isinstance(usage, Mapping):  # dict: no ABC check
            return None
        prompt_details = usage.get("prompt_tokens_details") or {}
        completion_details = usage.get("completion_tokens_details") or {}
        cached = prompt_details.get("cached_tokens") if isinstance(prompt_details, dict) else 0
        if not cached:
            cached = usage.get("prompt_cache_hit_tokens") or 0  # DeepSeek
        reasoning = (
            completion_details.get("reasoning_tokens")
            if isinstance(completion_details, dict)
            else 0
        )
        return cls(
            prompt_tokens=_int(usage.get("prompt_tokens")),
            completion_tokens=_int(usage.get("completion_tokens")),
            cached_tokens=_int(cached),
            reasoning_tokens=_int(reasoning),
        )

    def to_openai(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }

    def cost(self, input_per_million: float, output_per_million: float) -> float:
        return (
            self.prompt_tokens * input_per_million + self.completion_tokens * output_per_million
        ) / 1_000_000


def _int(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
