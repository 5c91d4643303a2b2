"""OpenTelemetry tracing, end to end: a gateway with tracing on exports OTLP/HTTP to a fake
collector on a real socket — one server span per request that continues the caller's
W3C trace, one child span per routing attempt — and the trace id lands in the request
log row. Off by default: no trace id anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tests.conftest import GatewayFactory, route
from tests.fakes.servers import RunningAiohttp, run_aiohttp

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


@dataclass
class Collector:
    spans: list[Span] = field(default_factory=list)
    services: set[str] = field(default_factory=set)

    async def traces(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    self.services.add(attribute.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend(scope_spans.spans)
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")


@pytest.fixture
def collector() -> Iterator[tuple[Collector, RunningAiohttp]]:
    state = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", state.traces)
    running = run_aiohttp(app, name="fake-otlp")
    yield state, running
    running.stop()


def attributes(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute in span.attributes:
        value = attribute.value
        out[attribute.key] = getattr(value, value.WhichOneof("value") or "string_value")
    return out


FAILOVER = {  # whenever the 503 route is tried first, the other one answers
    "name": "failover",
    "routes": [route("fake", "status-503"), route("fake", "ok")],
}
BODY = {"model": "failover", "messages": [{"role": "user", "content": "hi"}]}


def test_request_and_attempt_spans_exported(
    make_gateway: GatewayFactory, collector: tuple[Collector, RunningAiohttp]
) -> None:
    state, running = collector
    gateway = make_gateway(
        models=[FAILOVER],
        observability={"tracing": {"enabled": True, "otlp_endpoint": running.url + "/v1/traces"}},
    )
    for attempt in range(12):  # the weighted order is random: until one fails over
        request_id = f"traced-{attempt}"
        response = httpx.post(
            gateway.url + "/v1/chat/completions",
            json=BODY,
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01", "X-Request-ID": request_id},
            timeout=20,
        )
        assert response.status_code == 200
        row = gateway.wait_rows(1, "request_id = ?", (request_id,))[0]
        if len(orjson.loads(row["attempts"])) == 2:
            break
    else:
        pytest.fail("no request tried the failing route first")
    gateway.stop()  # flushes the batch exporter
    assert row["trace_id"] == TRACE_ID
    assert state.services == {"hybridinference"}
    traced = [s for s in state.spans if s.trace_id.hex() == TRACE_ID]
    servers = [s for s in traced if s.kind == Span.SPAN_KIND_SERVER]
    assert len(servers) == attempt + 1  # one server span per request
    server = next(s for s in servers if attributes(s)["hybridinference.request_id"] == request_id)
    mine = [s for s in traced if s.parent_span_id == server.span_id]
    assert server.name == "POST /v1/chat/completions"
    assert server.parent_span_id.hex() == PARENT_SPAN  # continues the caller's trace
    server_attrs = attributes(server)
    assert server_attrs["http.response.status_code"] == 200
    assert server_attrs["hybridinference.route"] == "fake/ok"
    attempts = sorted(
        (s for s in mine if s.kind == Span.SPAN_KIND_CLIENT),
        key=lambda s: attributes(s)["hybridinference.attempt"],
    )
    assert [s.name for s in attempts] == ["attempt fake/status-503", "attempt fake/ok"]
    assert all(s.parent_span_id == server.span_id for s in attempts)
    failed, ok = attempts
    assert failed.status.code == Status.STATUS_CODE_ERROR
    assert attributes(failed)["hybridinference.outcome"] != "ok"
    assert attributes(failed)["http.response.status_code"] >= 500  # as the gateway mapped it
    assert ok.status.code != Status.STATUS_CODE_ERROR
    assert attributes(ok)["hybridinference.outcome"] == "ok"
    assert failed.start_time_unix_nano <= ok.start_time_unix_nano  # from recorded offsets


def test_tracing_is_off_by_default(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway()
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={**BODY, "model": "ok"},
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01"},
        timeout=20,
    )
    assert response.status_code == 200
    assert gateway.state.telemetry is not None and gateway.state.telemetry.tracing is None
    assert gateway.wait_rows(1)[0]["trace_id"] is None
