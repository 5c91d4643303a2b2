"""Cheap pre-dispatch estimates: tokens from the request's text (no tokenizer), and the
UTC day and month a request is billed to.

The estimate errs high on purpose: a reservation that is too large is corrected a moment
later by the settlement, while one that is too small lets concurrent requests overshoot a
limit before anyone knows.
"""

from __future__ import annotations

import calendar as _calendar
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hybridinference.limits.model import Calendar

MESSAGE_OVERHEAD = 4  # role and separators per chat message
REQUEST_OVERHEAD = 3
IMAGE_TOKENS = 765  # a high-detail 1024x1024 image on OpenAI's tile pricing (errs high)


@dataclass(frozen=True, slots=True)
class TokenEstimator:
    chars_per_token: float = 3.0
    default_output_tokens: int = 256

    def text_tokens(self, text: str) -> int:
        return math.ceil(len(text) / self.chars_per_token)

    def input_tokens(self, body: Mapping[str, Any], raw_size: int) -> int:
        """From the messages' text when there is some, else from the body's size."""
        texts: list[str] = []
        images: list[str] = []
        messages = body.get("messages")
        count = 0
        if isinstance(messages, list):
            for message in messages:
                count += 1
                if isinstance(message, dict):
                    _collect(message.get("content"), texts, images)
        for field in ("prompt", "input"):
            _collect(body.get(field), texts, images)
        if not texts and not images:
            return math.ceil(raw_size / self.chars_per_token)
        total = sum(self.text_tokens(t) for t in texts) + IMAGE_TOKENS * len(images)
        return total + count * MESSAGE_OVERHEAD + REQUEST_OVERHEAD

    def output_tokens(self, body: Mapping[str, Any], embeddings: bool) -> int:
        if embeddings:
            return 0
        requested = body.get("max_completion_tokens") or body.get("max_tokens")
        per_choice = requested if isinstance(requested, int) and requested > 0 else None
        n = body.get("n")
        choices = n if isinstance(n, int) and n > 1 else 1
        return (per_choice or self.default_output_tokens) * choices


def _collect(value: Any, texts: list[str], images: list[str]) -> None:
    if isinstance(value, str):
        texts.append(value)
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, dict):
                _collect(item, texts, images)
            elif isinstance(item.get("text"), str):
                texts.append(item["text"])
            elif item.get("type") in ("image_url", "input_image", "image"):
                images.append(str(item.get("type")))


def billing_calendar(now: float) -> Calendar:
    """The UTC day and month of unix time ``now`` and the seconds left in each."""
    t = time.gmtime(now)
    day_start = _calendar.timegm((t.tm_year, t.tm_mon, t.tm_mday, 0, 0, 0, 0, 0, 0))
    year, month = (t.tm_year + 1, 1) if t.tm_mon == 12 else (t.tm_year, t.tm_mon + 1)
    next_month = _calendar.timegm((year, month, 1, 0, 0, 0, 0, 0, 0))
    return Calendar(
        day=f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}",
        month=f"{t.tm_year:04d}-{t.tm_mon:02d}",
        day_reset=day_start + 86400 - now,
        month_reset=next_month - now,
    )
