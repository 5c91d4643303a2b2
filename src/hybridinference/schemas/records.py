"""The request log row and the routing attempts it carries."""

from __future__ import annotations

from hybridinference.readonly import readonly


@readonly
class Attempt:
    route: str
    outcome: str  # "ok" or the error code
    latency_ms: float
    status: int
    started_ms: float | None = None  # after the request's start: when the attempt began


@readonly
class RequestRecord:
    """Exactly one per request, success or failure, streamed or not."""

    request_id: str
    created_at: float  # unix seconds
    endpoint: str
    key_id: str | None
    model: str | None
    route: str | None
    status: int
    error_type: str | None
    latency_ms: float
    ttft_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float
    stream: bool
    attempts: tuple[Attempt, ...] = ()
    cancelled: bool = False
    client_ip: str | None = None
    content: str | None = None  # only when storage.store_content is on
    trace_id: str | None = None  # OpenTelemetry trace id (32 hex) when tracing is on
