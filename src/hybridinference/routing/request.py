"""What routing needs to know about a request body, estimated in one cheap pass:
prompt tokens (≈ characters / 4), expected output tokens, and whether it uses tools
or images (routes without those capabilities are skipped)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 800  # a typical image's prompt cost; only used for context-length checks


def _content_size(content: Any) -> tuple[int, bool]:
    """(characters, has an image) of one message's content."""
    if isinstance(content, str):
        return len(content), False
    if not isinstance(content, list):
        return 0, False
    chars = 0
    image = False
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            chars += len(text) if isinstance(text, str) else 0
        elif kind in ("image_url", "input_image", "image"):
            image = True
            chars += IMAGE_TOKENS * CHARS_PER_TOKEN
    return chars, image


def estimate(body: Mapping[str, Any], default_output: int) -> tuple[int, int, bool, bool]:
    """(prompt tokens, output tokens, uses tools, has images)."""
    chars = 0
    images = False
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                size, image = _content_size(message.get("content"))
                chars += size
                images = images or image
    else:
        prompt = body.get("prompt", body.get("input"))
        if isinstance(prompt, str):
            chars = len(prompt)
        elif isinstance(prompt, list):
            chars = sum(len(p) for p in prompt if isinstance(p, str))
    requested = body.get("max_completion_tokens") or body.get("max_tokens")
    output = requested if isinstance(requested, int) and requested > 0 else default_output
    tools = bool(body.get("tools") or body.get("functions"))
    return chars // CHARS_PER_TOKEN + 1, output, tools, images
