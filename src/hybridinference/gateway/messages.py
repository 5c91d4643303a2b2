"""``POST /v1/messages`` and ``/v1/messages/count_tokens``: the Anthropic Messages API in
front of every configured model.

The request is translated to the OpenAI shape the routing manager and adapters speak
(``adapters.anthropic_inbound``), routed, logged and limited exactly like a chat
completion (one ``Exchange``, one log row), and the answer translated back. Keys come
as ``x-api-key`` or ``Authorization: Bearer``; errors have Anthropic's shape.
"""

from __future__ import annotations

import math

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from hybridinference.adapters.anthropic_inbound import to_openai_request
from hybridinference.adapters.anthropic_response import to_anthropic_message
from hybridinference.adapters.base import Endpoint
from hybridinference.errors import GatewayError, NotFound
from hybridinference.gateway.anthropic_errors import anthropic_error_response
from hybridinference.gateway.auth import request_key
from hybridinference.gateway.body import declared_size, read_json_object, validate
from hybridinference.gateway.deps import app_state
from hybridinference.gateway.exchange import (
    CLIENT_CLOSED,
    ClientDisconnected,
    Exchange,
    cancel_on_disconnect,
)
from hybridinference.gateway.messages_stream import relay_messages
from hybridinference.gateway.responses import AnswerResponse, EventStreamResponse, JSONResponse
from hybridinference.schemas.anthropic import (
    AnthropicErrorResponse,
    CountTokensRequest,
    MessagesRequest,
)
from hybridinference.schemas.usage import Usage

#: a rough, tokenizer-free estimate (bytes of JSON per token) for count_tokens
BYTES_PER_TOKEN = 4
ENDPOINT_OFF = "The Anthropic Messages API is turned off on this gateway."


async def create_message(request: Request) -> Response | EventStreamResponse:
    state = app_state(request)
    exchange = Exchange(state, request, "messages")
    try:
        exchange.principal = await state.keys.authenticate(request_key(request))
        if not state.config.flags.anthropic_endpoint:
            raise NotFound(ENDPOINT_OFF)
        native = await read_json_object(request, state.config.server.max_body_bytes, exchange.loop)
        validate(MessagesRequest, native)
        model: str = native["model"]
        exchange.model = model
        routed = state.routing.manager.resolve(model, exchange.principal.allowed_models)
        body = to_openai_request(native)
        if state.limits is not None:  # per-key limits, as on chat completions
            await state.limits.check(exchange, body, routed, declared_size(request))
        if exchange.content is not None:
            exchange.content["request"] = native
        manager = state.routing.manager
        if body.get("stream"):
            exchange.stream = True
            opened = await cancel_on_disconnect(
                request.receive,
                manager.open_stream(routed, Endpoint.CHAT, body, exchange.trace),
                exchange.loop,
            )
            return EventStreamResponse(
                relay_messages(opened, exchange, model),
                headers={**exchange.route_headers(), "request-id": exchange.request_id},
                on_disconnect=exchange.disconnected,
            )
        result = await cancel_on_disconnect(
            request.receive,
            manager.complete(routed, Endpoint.CHAT, body, exchange.trace),
            exchange.loop,
        )
        exchange.trace.mark_first_token()
        exchange.trace.usage = Usage.from_openai(result.get("usage"))
        message = to_anthropic_message(result, model, _message_id(exchange))
        if exchange.content is not None:
            exchange.content["response"] = message
        return AnswerResponse(
            message,
            {**exchange.route_headers(), "request-id": exchange.request_id},
            exchange.succeeded,
        )
    except GatewayError as exc:
        exchange.finish(exc.status_code, exc)
        return anthropic_error_response(exc, exchange.request_id, exchange.route_headers())
    except ClientDisconnected:
        exchange.disconnected()
        return Response(status_code=CLIENT_CLOSED)
    except BaseException:
        exchange.finish(500)
        raise


async def count_tokens(request: Request) -> Response:
    """An estimate (no tokenizer is loaded): JSON bytes of the prompt over four."""
    state = app_state(request)
    exchange = Exchange(state, request, "messages.count_tokens")
    try:
        exchange.principal = await state.keys.authenticate(request_key(request))
        if not state.config.flags.anthropic_endpoint:
            raise NotFound(ENDPOINT_OFF)
        body = await read_json_object(request, state.config.server.max_body_bytes, exchange.loop)
        validate(CountTokensRequest, body)
        exchange.model = body["model"]
        state.routing.manager.resolve(body["model"], exchange.principal.allowed_models)
        prompt = {k: body.get(k) for k in ("system", "messages", "tools") if body.get(k)}
        tokens = math.ceil(len(orjson.dumps(prompt)) / BYTES_PER_TOKEN)
        exchange.trace.usage = Usage(prompt_tokens=0)
        exchange.finish(200)
        return JSONResponse({"input_tokens": tokens}, headers={"request-id": exchange.request_id})
    except GatewayError as exc:
        exchange.finish(exc.status_code, exc)
        return anthropic_error_response(exc, exchange.request_id)


def _message_id(exchange: Exchange) -> str:
    return "msg_" + exchange.request_id.replace("-", "")


def include_messages_routes(app: FastAPI) -> None:
    for path, endpoint, schema in (
        ("/v1/messages", create_message, MessagesRequest),
        ("/v1/messages/count_tokens", count_tokens, CountTokensRequest),
    ):
        app.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            response_model=None,
            responses={400: {"model": AnthropicErrorResponse, "description": "Anthropic error"}},
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": schema.model_json_schema()}},
                }
            },
            tags=["anthropic"],
        )
