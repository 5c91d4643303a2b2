"""``fast_check`` is sound: whatever it accepts, pydantic (strict) accepts too; and it does
accept the usual bodies, or the shortcut would buy nothing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from hybridinference.schemas.anthropic import MessagesRequest
from hybridinference.schemas.fastcheck import fast_check
from hybridinference.schemas.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
)

CHAT = {"model": "m", "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16}
SEEDS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (ChatCompletionRequest, CHAT),
    (
        ChatCompletionRequest,
        {
            "model": "m",
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0.2,
            "top_p": 1,
            "n": 2,
            "stop": ["\n"],
            "seed": 7,
            "user": "u",
            "max_completion_tokens": 64,
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": "auto",
            "response_format": {"type": "json_object"},
            "top_k": 5,  # an engine extra: allowed through
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "42", "name": "f"},
            ],
        },
    ),
    (CompletionRequest, {"model": "m", "prompt": "Once", "max_tokens": 5, "stop": "."}),
    (CompletionRequest, {"model": "m", "prompt": [[1, 2], [3]]}),
    (EmbeddingRequest, {"model": "m", "input": ["a", "b"], "encoding_format": "float"}),
    (
        MessagesRequest,
        {
            "model": "m",
            "max_tokens": 100,
            "system": "Be brief.",
            "temperature": 0.5,
            "messages": [{"role": "user", "content": "Hello"}],
        },
    ),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(-3, 3) | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def accepts(model: type[BaseModel], body: Any) -> bool:
    try:
        model.model_validate(body, strict=True)
    except ValidationError:
        return False
    return True


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a body a mutation can land on."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> tuple[type[BaseModel], Any]:
    model, seed = draw(st.sampled_from(SEEDS))
    body = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 3))):
        places = paths(body)
        field_names = [*model.model_fields, "role", "content", "text", "type"]
        where = draw(st.sampled_from(places)) if places else ()
        parent = body
        for step in where[:-1]:
            parent = parent[step]
        if draw(st.booleans()) and isinstance(parent, dict) and where:
            parent.pop(where[-1], None)  # a field goes missing
        elif isinstance(parent, dict):
            key = draw(st.sampled_from([*field_names, where[-1]] if where else field_names))
            parent[key] = draw(json_values)
        elif isinstance(parent, list) and where:
            parent[where[-1]] = draw(json_values)
    return model, body


@pytest.mark.parametrize(("model", "body"), SEEDS)
def test_usual_bodies_take_the_shortcut(model: type[BaseModel], body: dict[str, Any]) -> None:
    assert fast_check(model)(body) and accepts(model, body)


@pytest.mark.parametrize(
    "change",
    [
        {"model": ""},
        {"max_tokens": 0},
        {"max_tokens": True},
        {"stream": "false"},
        {"temperature": 2.5},
        {"messages": []},
        {"messages": [{"role": "robot", "content": "x"}]},
        {"messages": [{"content": "no role"}]},
        {"stop": ["a", 1]},
        {"stream_options": {"include_usage": "yes"}},
    ],
)
def test_bad_bodies_go_to_pydantic(change: dict[str, Any]) -> None:
    body = {**CHAT, **change}
    assert not fast_check(ChatCompletionRequest)(body)
    assert not accepts(ChatCompletionRequest, body)


def test_models_it_cannot_read_are_never_vouched_for() -> None:
    class Checked(BaseModel):
        name: str

        @field_validator("name")
        @classmethod
        def shout(cls, value: str) -> str:
            return value.upper()

    class Closed(BaseModel):
        model_config = ConfigDict(extra="forbid")
        name: str

    class Trimmed(BaseModel):
        model_config = ConfigDict(str_min_length=2)
        name: str

    assert not fast_check(Checked)({"name": "a"})
    assert not fast_check(Closed)({"name": "a"})
    assert not fast_check(Trimmed)({"name": "a"})
    assert not fast_check(ChatCompletionRequest)(["not", "an", "object"])


@settings(max_examples=1500, deadline=None)
@given(mutated())
def test_whatever_the_shortcut_accepts_pydantic_accepts(case: tuple[type[BaseModel], Any]) -> None:
    model, body = case
    if fast_check(model)(body):
        assert accepts(model, body), body
