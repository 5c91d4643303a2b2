"""OpenTelemetry tracing (off unless ``observability.tracing.enabled``): a server span per
HTTP request, and a child span per routing attempt (each attempt is one upstream call),
exported over OTLP/HTTP in batches off the request path.

The tracer provider belongs to the app (never installed as the process-wide default).
The request span is made current for the request's context, so log lines and the request
record carry its trace id; incoming W3C ``traceparent`` headers are honoured.

Attempt spans are written when the request finishes, from the attempts recorded on the
``RequestRecord``: routing keeps no tracer. Their start is the attempt's recorded offset
when routing provides one (``Attempt.started_ms``), else attempts are laid end to end
from the request's start.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hybridinference import __version__
from hybridinference.config.schema import TracingConfig
from hybridinference.schemas.records import RequestRecord

NS = 1_000_000_000


class Tracing:
    def __init__(self, config: TracingConfig, exporter: SpanExporter | None = None) -> None:
        resource = Resource.create(
            {"service.name": config.service_name, "service.version": __version__}
        )
        self._provider = TracerProvider(
            resource=resource, sampler=ParentBased(TraceIdRatioBased(config.sample_ratio))
        )
        self._provider.add_span_processor(
            BatchSpanProcessor(exporter or OTLPSpanExporter(endpoint=config.otlp_endpoint))
        )
        self._tracer = self._provider.get_tracer("hybridinference", __version__)
        self._propagator = TraceContextTextMapPropagator()

    def start_request(
        self, method: str, path: str, headers: Mapping[str, str]
    ) -> tuple[trace.Span, object]:
        """Start the server span and make it current; returns it with the detach token."""
        parent = self._propagator.extract(headers)
        span = self._tracer.start_span(
            f"{method} {path}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        return span, token

    def end_request(
        self, span: trace.Span, token: object, status: int, method: str, route: str | None
    ) -> None:
        if route is not None:
            span.update_name(f"{method} {route}")
            span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()
        otel_context.detach(token)  # type: ignore[arg-type]

    def record_attempts(self, record: RequestRecord) -> None:
        """Annotate the current request span and add one child span per attempt."""
        span = trace.get_current_span()
        if not span.get_span_context().is_valid or not span.is_recording():
            return
        for key, value in (
            ("hybridinference.request_id", record.request_id),
            ("gen_ai.request.model", record.model),
            ("hybridinference.route", record.route),
            ("gen_ai.usage.input_tokens", record.prompt_tokens),
            ("gen_ai.usage.output_tokens", record.completion_tokens),
            ("hybridinference.cost_usd", record.cost),
            ("hybridinference.stream", record.stream),
            ("error.type", record.error_type),
        ):
            if value is not None:
                span.set_attribute(key, value)
        parent = trace.set_span_in_context(span)
        offset_ms = 0.0
        for index, attempt in enumerate(record.attempts):
            started_ms = getattr(attempt, "started_ms", None)
            begin_ms = started_ms if isinstance(started_ms, int | float) else offset_ms
            start = int((record.created_at + begin_ms / 1000) * NS)
            child = self._tracer.start_span(
                f"attempt {attempt.route}",
                context=parent,
                kind=SpanKind.CLIENT,
                start_time=start,
                attributes={
                    "hybridinference.attempt": index + 1,
                    "hybridinference.route": attempt.route,
                    "hybridinference.outcome": attempt.outcome,
                    "http.response.status_code": attempt.status,
                },
            )
            if attempt.outcome != "ok":
                child.set_status(Status(StatusCode.ERROR, attempt.outcome))
            child.end(end_time=start + int(attempt.latency_ms / 1000 * NS))
            offset_ms = begin_ms + attempt.latency_ms

    def shutdown(self) -> None:
        """Flush and stop the exporter (blocking: call it off the event loop)."""
        self._provider.shutdown()
