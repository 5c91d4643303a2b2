"""``POST /v1/chat/completions``, ``/v1/completions`` and ``/v1/embeddings``.

Thin on purpose: authenticate, read the body once, resolve the model, hand over to the
routing manager, respond (JSON or SSE). Every path ends in exactly one log row.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from hybridinference.adapters.base import Endpoint
from hybridinference.errors import GatewayError
from hybridinference.gateway.auth import request_key
from hybridinference.gateway.body import declared_size, read_json_object, validate
from hybridinference.gateway.deps import app_state
from hybridinference.gateway.exchange import (
    CLIENT_CLOSED,
    ClientDisconnected,
    Exchange,
    cancel_on_disconnect,
)
from hybridinference.gateway.reasoning import strip_reasoning, strip_stream
from hybridinference.gateway.responses import (
    AnswerResponse,
    EventStreamResponse,
    error_response,
)
from hybridinference.gateway.streaming import relay
from hybridinference.schemas.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
)
from hybridinference.schemas.usage import Usage


async def serve_inference(
    request: Request, endpoint: Endpoint, schema: type[BaseModel]
) -> Response | EventStreamResponse:
    state = app_state(request)
    exchange = Exchange(state, request, endpoint.value)
    try:
        exchange.principal = await state.keys.authenticate(request_key(request))
        body = await read_json_object(request, state.config.server.max_body_bytes, exchange.loop)
        validate(schema, body)
        model: str = body["model"]
        exchange.model = model
        allowed = exchange.principal.allowed_models
        manager = state.routing.manager  # read once: the request stays on one generation
        routed = manager.resolve(model, allowed)
        flags = state.flags.for_model(routed.routes.name)
        exchange.content = {} if flags.content_logging else None
        if state.limits is not None:  # no I/O when the key has no limit
            await state.limits.check(exchange, body, routed, declared_size(request))
        if exchange.content is not None:
            exchange.content["request"] = body
        if body.get("stream") and endpoint is not Endpoint.EMBEDDINGS:
            exchange.stream = True
            options = body.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            opened = await cancel_on_disconnect(
                request.receive,
                manager.open_stream(routed, endpoint, body, exchange.trace, allowed),
                exchange.loop,
            )
            if not flags.reasoning_passthrough:
                opened = strip_stream(opened)
            return EventStreamResponse(
                relay(opened, exchange, model, include_usage),
                headers=exchange.route_headers(),
                on_disconnect=exchange.disconnected,
            )
        result = await cancel_on_disconnect(
            request.receive,
            manager.complete(routed, endpoint, body, exchange.trace, allowed),
            exchange.loop,
        )
        exchange.trace.mark_first_token()
        exchange.trace.usage = Usage.from_openai(result.get("usage"))
        result["model"] = model
        if not flags.reasoning_passthrough:
            strip_reasoning(result)
        if exchange.content is not None:
            exchange.content["response"] = result
        return AnswerResponse(result, exchange.route_headers(), exchange.succeeded)
    except GatewayError as exc:
        exchange.finish(exc.status_code, exc)
        return error_response(exc, exchange.route_headers())
    except ClientDisconnected:
        exchange.disconnected()
        return Response(status_code=CLIENT_CLOSED)
    except asyncio.CancelledError:  # cancelled by the server (shutdown): logged as cancelled
        exchange.disconnected()
        raise
    except BaseException:
        exchange.finish(500)
        raise


async def chat_completions(request: Request) -> Response | EventStreamResponse:
    return await serve_inference(request, Endpoint.CHAT, ChatCompletionRequest)


async def completions(request: Request) -> Response | EventStreamResponse:
    return await serve_inference(request, Endpoint.COMPLETIONS, CompletionRequest)


async def embeddings(request: Request) -> Response | EventStreamResponse:
    return await serve_inference(request, Endpoint.EMBEDDINGS, EmbeddingRequest)
