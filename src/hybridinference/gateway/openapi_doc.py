"""The OpenAPI document's answers: what each operation returns, by status.

FastAPI documents requests from the routes; the answers of these endpoints are built by
hand (orjson responses), so they are described here, once, and merged into the generated
document: the success schemas of the main endpoints, the status each operation answers
with (201 for a created key, 503 for not ready), and for every operation the error
envelope as the ``default`` answer — every error the gateway sends is that envelope
(Anthropic's shape on ``/v1/messages``). ``tests/fuzz/test_openapi.py`` holds the
document to what the running gateway actually sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from hybridinference.gateway.admin import CreateKey, UpdateKey

JSON = "application/json"
SSE = "text/event-stream"
Schema = dict[str, Any]


def _obj(required: Mapping[str, Schema], **optional: Schema) -> Schema:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **optional},
    }


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
ANY_OBJ: Schema = {"type": "object"}
LIST_OF = {"object": {"const": "list"}}
USAGE = _obj({"prompt_tokens": INT, "total_tokens": INT}, completion_tokens=INT)
CHOICES: Schema = {"type": "array", "items": _obj({"index": INT})}
CHAT = _obj(
    {"id": STR, "object": STR, "created": INT, "model": STR, "choices": CHOICES}, usage=USAGE
)
EMBEDDINGS = _obj(
    {"object": STR, "data": {"type": "array", "items": _obj({"index": INT})}, "model": STR}
)
MODEL = _obj({"id": STR, "object": {"const": "model"}, "created": INT, "owned_by": STR})
MODELS = _obj({**LIST_OF, "data": {"type": "array", "items": MODEL}})
NULLABLE_NUM: Schema = {"type": ["number", "null"]}
KEY = _obj(
    {
        "id": STR,
        "name": STR,
        "prefix": STR,
        "active": {"type": "boolean"},
        "created_at": NUM,
    },
    allowed_models={"type": ["array", "null"], "items": STR},
    revoked_at=NULLABLE_NUM,
)
KEYS = _obj({**LIST_OF, "data": {"type": "array", "items": KEY}})
HEALTH = _obj({"status": STR}, checks=ANY_OBJ)
ANTHROPIC_MESSAGE = _obj({"id": STR, "type": {"const": "message"}, "content": {"type": "array"}})


def _answer(description: str, schema: Schema | None = None, stream: bool = False) -> Schema:
    content: Schema = {JSON: {"schema": schema or ANY_OBJ}}
    if stream:
        content[SSE] = {"schema": STR}
    return {"description": description, "content": content}


#: (method, path) -> {status: answer}; operations not listed answer 200 with a JSON object
ANSWERS: Mapping[tuple[str, str], Mapping[str, Schema]] = {
    ("post", "/v1/chat/completions"): {"200": _answer("A completion or SSE", CHAT, True)},
    ("post", "/v1/completions"): {"200": _answer("A completion or SSE", CHAT, True)},
    ("post", "/v1/embeddings"): {"200": _answer("Embeddings", EMBEDDINGS)},
    ("post", "/v1/messages"): {"200": _answer("A message or SSE", ANTHROPIC_MESSAGE, True)},
    ("get", "/v1/models"): {"200": _answer("The models this key may use", MODELS)},
    ("get", "/v1/models/{model}"): {"200": _answer("One model", MODEL)},
    ("get", "/health"): {"200": _answer("Alive", HEALTH)},
    ("get", "/health/ready"): {
        "200": _answer("Ready", HEALTH),
        "503": _answer("Not ready: no usable route or no log store", HEALTH),
    },
    ("get", "/admin/keys"): {"200": _answer("Every key (never the secret)", KEYS)},
    ("post", "/admin/keys"): {
        "201": _answer("The new key; its secret is shown this once", {**KEY})
    },
    ("get", "/admin/keys/{key_id}"): {"200": _answer("One key and its spend", KEY)},
    ("patch", "/admin/keys/{key_id}"): {"200": _answer("The updated key", KEY)},
}


def _error(path: str, components: Mapping[str, Any]) -> Schema:
    name = "AnthropicErrorResponse" if path.startswith("/v1/messages") else "ErrorResponse"
    if name not in components:
        return _answer("An error", ANY_OBJ)
    return _answer("An error", {"$ref": f"#/components/schemas/{name}"})


def _bodies() -> Mapping[tuple[str, str], type[BaseModel]]:
    """Request bodies FastAPI cannot see (the endpoints read the raw body themselves)."""
    return {("post", "/admin/keys"): CreateKey, ("patch", "/admin/keys/{key_id}"): UpdateKey}


def _hoist(schema: Any, components: dict[str, Any]) -> Any:
    """Pydantic's nested ``$defs`` move to ``components/schemas`` and their ``$ref``s
    follow: ``#/$defs/X`` inside an OpenAPI document points at nothing."""
    if isinstance(schema, dict):
        for name, definition in schema.pop("$defs", {}).items():
            components.setdefault(name, _hoist(definition, components))
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            schema["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
        for value in schema.values():
            _hoist(value, components)
    elif isinstance(schema, list):
        for value in schema:
            _hoist(value, components)
    return schema


def describe_answers(document: dict[str, Any]) -> dict[str, Any]:
    """Merge ``ANSWERS`` and the error envelope into a generated document (in place)."""
    components = document.setdefault("components", {}).setdefault("schemas", {})
    bodies = _bodies()
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if (method, path) in bodies and "requestBody" not in operation:
                schema = bodies[(method, path)].model_json_schema()
                operation["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
            if "requestBody" in operation:
                _hoist(operation["requestBody"], components)
            responses: dict[str, Any] = operation.setdefault("responses", {})
            answers = ANSWERS.get((method, path))
            if answers is not None:
                if "200" not in answers:
                    responses.pop("200", None)
                responses.update(answers)
            elif "200" in responses:
                responses["200"] = _answer(responses["200"].get("description", "OK"))
            for status, answer in list(responses.items()):
                if status[:1] in ("4", "5") and status not in (answers or {}):
                    responses[status] = {**_error(path, components), **answer_text(answer)}
            responses["default"] = _error(path, components)
    return document


def answer_text(answer: Mapping[str, Any]) -> dict[str, Any]:
    return {"description": answer.get("description", "An error")}


def install_openapi(app: FastAPI) -> None:
    """``app.openapi()`` returns the generated document with the answers described."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = describe_answers(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
