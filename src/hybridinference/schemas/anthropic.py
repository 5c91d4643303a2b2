"""Anthropic-shaped request models for ``/v1/messages``: validation at the edge and the
OpenAPI document. Unknown fields pass (``extra="allow"``): the parsed body is what gets
translated, so these only check what the translation relies on."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ContentBlock(Open):
    type: str


class MessageParam(Open):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


class ToolParam(Open):
    name: str = Field(min_length=1)
    description: str | None = None
    input_schema: dict[str, Any] | None = None


class CountTokensRequest(Open):
    model: str = Field(min_length=1)
    messages: list[MessageParam] = Field(min_length=1)
    system: str | list[ContentBlock] | None = None
    tools: list[ToolParam] | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: int = Field(ge=0)
    stream: bool | None = None
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0)
    stop_sequences: list[str] | None = None
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class ErrorDetail(BaseModel):
    type: str
    message: str


class AnthropicErrorResponse(BaseModel):
    """Anthropic's error shape; every error ``/v1/messages`` returns has it."""

    type: Literal["error"] = "error"
    error: ErrorDetail
