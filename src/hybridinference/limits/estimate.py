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

    def input_tokens(self, body: Mapping[str, Any], raw_size: int) -> int:
        """From the messages' text when there is some, else from the body's size. One pass,
        no intermediate lists: it runs before every upstream call (provider accounts)."""
        tally = _Tally(self.chars_per_token)
        messages = body.get("messages")
        count = 0
        if isinstance(messages, list):
            count = len(messages)
            for message in messages:
                if isinstance(message, dict):
                    content = message.get("content")
                    if content is not None:
                        tally.add(content)
        for field in ("prompt", "input"):
            value = body.get(field)
            if value is not None:
                tally.add(value)
        if not tally.found:
            return math.ceil(raw_size / self.chars_per_token)
        return tally.tokens + count * MESSAGE_OVERHEAD + REQUEST_OVERHEAD

    def output_tokens(self, body: Mapping[str, Any], embeddings: bool) -> int:
        if embeddings:
            return 0
        requested = body.get("max_completion_tokens") or body.get("max_tokens")
        per_choice = requested if isinstance(requested, int) and requested > 0 else None
        n = body.get("n")
        choices = n if isinstance(n, int) and n > 1 else 1
        return (per_choice or self.default_output_tokens) * choices


@dataclass(slots=True)
class _Tally:
    """Tokens of the texts and images seen so far; ``found``: any at all."""

    chars_per_token: float
    tokens: int = 0
    found: bool = False

    def add(self, value: Any) -> None:
        if isinstance(value, str):
            self.tokens += math.ceil(len(value) / self.chars_per_token)
            self.found = True
        elif isinstance(value, list):
            for item in value:
                if not isinstance(item, dict):
                    self.add(item)
                elif isinstance(item.get("text"), str):
                    self.add(item["text"])
                elif item.get("type") in ("image_url", "input_image", "image"):
                    self.tokens += IMAGE_TOKENS
                    self.found = True


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
