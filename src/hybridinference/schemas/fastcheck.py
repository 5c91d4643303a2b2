"""A sound shortcut for validating request bodies on the hot path.

``fast_check(Model)`` derives, once per model, a plain-Python predicate from the model's
fields: their types (``str``, ``int``, ``float``, ``bool``, ``None``, ``Any``,
``Literal``, unions, ``list``, ``dict`` and nested models) and their ``ge``/``le``/
``gt``/``lt``/``min_length``/``max_length`` constraints, with pydantic's strict-mode rules
(an ``int`` is not a ``bool``; a ``float`` field takes an ``int``). It answers True only
for a body the model accepts in strict mode; for anything it cannot vouch for — a type or
constraint it does not know, a model with validators of its own, a value out of shape —
it answers False and the caller runs pydantic, which accepts or explains the error.
Sound, not complete: ``tests/unit/test_fastcheck.py`` checks "fast ⇒ pydantic" on
generated bodies.

Why: pydantic's validator is quick in a tight loop (~2.5 µs for a chat request) but is a
large body of code and data of its own; on a sparse request it runs from cold caches and
cost ~0.1 ms of the gateway's added latency at 200 requests/s (docs/performance.md),
where this predicate touches only the interpreter and the body.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel

Check = Callable[[Any], bool]


def _never(_value: Any) -> bool:
    return False


def _always(_value: Any) -> bool:
    return True


def _exact(kind: type) -> Check:
    return lambda value: type(value) is kind


def _number(value: Any) -> bool:  # strict float: a float or an int, never a bool
    kind = type(value)
    return kind is float or kind is int


#: leaf types → their strict-mode check
LEAVES: dict[Any, Check] = {
    str: _exact(str),
    int: _exact(int),
    bool: _exact(bool),
    float: _number,
    type(None): lambda value: value is None,
    Any: _always,
}


def _union(args: tuple[Any, ...]) -> Check:
    members = tuple(_check_for(arg) for arg in args)
    return lambda value: any(member(value) for member in members)


def _list(args: tuple[Any, ...]) -> Check:
    item = _check_for(args[0]) if args else _always
    return lambda value: type(value) is list and all(item(x) for x in value)


def _dict(args: tuple[Any, ...]) -> Check:
    if args and args[0] is not str:
        return _never
    item = _check_for(args[1]) if len(args) == 2 else _always
    return lambda value: (
        type(value) is dict and all(type(k) is str and item(v) for k, v in value.items())
    )


def _literal(args: tuple[Any, ...]) -> Check:
    if not all(type(arg) is str for arg in args):
        return _never
    allowed = frozenset(args)
    return lambda value: type(value) is str and value in allowed


#: generic origins → a builder from their type arguments
GENERICS: dict[Any, Callable[[tuple[Any, ...]], Check]] = {
    typing.Union: _union,
    types.UnionType: _union,
    list: _list,
    dict: _dict,
    Literal: _literal,
}

#: constraint types → a check of a value already of the right type
CONSTRAINTS: dict[type, Callable[[Any], Check]] = {
    annotated_types.Ge: lambda c: lambda value: value >= c.ge,
    annotated_types.Le: lambda c: lambda value: value <= c.le,
    annotated_types.Gt: lambda c: lambda value: value > c.gt,
    annotated_types.Lt: lambda c: lambda value: value < c.lt,
    annotated_types.MinLen: lambda c: lambda value: len(value) >= c.min_length,
    annotated_types.MaxLen: lambda c: lambda value: len(value) <= c.max_length,
}


def _check_for(annotation: Any) -> Check:
    leaf = LEAVES.get(annotation)
    if leaf is not None:
        return leaf
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return lambda value: fast_check(annotation)(value)  # looked up late: no recursion
    builder = GENERICS.get(typing.get_origin(annotation))
    return builder(typing.get_args(annotation)) if builder is not None else _never


def _field(annotation: Any, metadata: list[Any]) -> Check:
    """The field's type check, then its constraints on any value that is not None."""
    kind = _check_for(annotation)
    limits: list[Check] = []
    for constraint in metadata:
        make = CONSTRAINTS.get(type(constraint))
        if make is None:
            return _never
        limits.append(make(constraint))
    if not limits:
        return kind

    def constrained(value: Any) -> bool:
        if not kind(value):
            return False
        try:
            return value is None or all(f(value) for f in limits)
        except TypeError:  # a constraint that does not apply to this member of a union
            return False

    return constrained


@functools.cache
def fast_check(model: type[BaseModel]) -> Check:
    """The predicate for ``model`` (built once): True only for a body it accepts."""
    decorators = model.__pydantic_decorators__
    if (
        decorators.validators
        or decorators.field_validators
        or decorators.root_validators
        or decorators.model_validators
        or model.model_config.get("extra") == "forbid"
    ):
        return _never
    fields: list[tuple[str, bool, Check]] = []
    for name, info in model.model_fields.items():
        if info.validation_alias is not None:
            return _never
        fields.append(
            (info.alias or name, info.is_required(), _field(info.annotation, info.metadata))
        )

    def check(value: Any) -> bool:
        if type(value) is not dict:
            return False
        for key, required, field_check in fields:
            if key in value:
                if not field_check(value[key]):
                    return False
            elif required:
                return False
        return True

    return check
