"""A sound shortcut for validating request bodies on the hot path.

``fast_check(Model)`` derives, once per model, a plain-Python predicate from the model's
fields: their types (``str``, ``int``, ``float``, ``bool``, ``None``, ``Any``,
``Literal``, unions, ``list``, ``dict`` and nested models) and their ``ge``/``le``/
``gt``/``lt``/``min_length``/``max_length`` constraints, with pydantic's strict-mode rules
(an ``int`` is not a ``bool``; a ``float`` field takes an ``int``). It answers True only
for a body the model accepts in strict mode; for anything it cannot vouch for — a type or
constraint it does not know, a model with validators of its own or one that contains
itself, a value out of shape — it answers False and the caller runs pydantic, which
accepts or explains the error. Sound, not complete: ``tests/unit/test_fastcheck.py``
checks "fast ⇒ pydantic" on generated bodies.

The predicates are plain loops over the keys a body has (not ``any``/``all`` over
generators, not every field of the model): they run on every request.
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


def _number(value: Any) -> bool:  # strict float: a float or an int, never a bool
    kind = type(value)
    return kind is float or kind is int


#: types whose strict check is ``type(value) is T``
EXACT: dict[Any, Check] = {
    str: lambda value: type(value) is str,
    int: lambda value: type(value) is int,
    bool: lambda value: type(value) is bool,
    type(None): lambda value: value is None,
}
#: leaf types → their strict-mode check
LEAVES: dict[Any, Check] = {**EXACT, float: _number, Any: _always}

#: model settings that change nothing about which inputs are valid
HARMLESS_CONFIG = frozenset({"extra", "title", "json_schema_extra", "use_attribute_docstrings"})
#: constraint types → a check of a value already of the right type
CONSTRAINTS: dict[type, Callable[[Any], Check]] = {
    annotated_types.Ge: lambda c: lambda value: value >= c.ge,
    annotated_types.Le: lambda c: lambda value: value <= c.le,
    annotated_types.Gt: lambda c: lambda value: value > c.gt,
    annotated_types.Lt: lambda c: lambda value: value < c.lt,
    annotated_types.MinLen: lambda c: lambda value: len(value) >= c.min_length,
    annotated_types.MaxLen: lambda c: lambda value: len(value) <= c.max_length,
}


def _union(members: tuple[Check, ...], exact: frozenset[Any]) -> Check:
    """Members decided by the value's type alone are one set lookup."""

    def check(value: Any) -> bool:
        if type(value) in exact:
            return True
        for member in members:  # noqa: SIM110 (a loop, not a generator: module doc)
            if member(value):
                return True
        return False

    return check


def _list(item: Check) -> Check:
    def check(value: Any) -> bool:
        if type(value) is not list:
            return False
        for x in value:  # noqa: SIM110
            if not item(x):
                return False
        return True

    return check


def _dict(item: Check) -> Check:
    if item is _always:  # dict[str, Any]: a JSON object's keys are strings
        return lambda value: type(value) is dict

    def check(value: Any) -> bool:
        if type(value) is not dict:
            return False
        for key, x in value.items():  # noqa: SIM110
            if type(key) is not str or not item(x):
                return False
        return True

    return check


def _constrained(kind: Check, limits: tuple[Check, ...]) -> Check:
    def check(value: Any) -> bool:
        if not kind(value):
            return False
        if value is None:
            return True
        try:
            for limit in limits:
                if not limit(value):
                    return False
        except TypeError:  # a constraint that does not apply to this member of a union
            return False
        return True

    return check


def _fields(checks: dict[str, Check], required: tuple[str, ...]) -> Check:
    def check(value: Any) -> bool:
        """Only the keys present are looked at (extra keys are allowed through)."""
        if type(value) is not dict:
            return False
        for key in required:
            if key not in value:
                return False
        for key, item in value.items():
            field_check = checks.get(key)
            if field_check is not None and not field_check(item):
                return False
        return True

    return check


class _Builder:
    """Builds the predicate of one model and the models inside it."""

    def __init__(self) -> None:
        self._building: set[type[BaseModel]] = set()
        self._generics: dict[Any, Callable[[tuple[Any, ...]], Check]] = {
            typing.Union: self._union,
            types.UnionType: self._union,
            list: self._list,
            dict: self._dict,
            Literal: self._literal,
        }

    def model(self, model: type[BaseModel]) -> Check:
        decorators = model.__pydantic_decorators__
        if (
            model in self._building  # contains itself: not vouched for
            or decorators.validators
            or decorators.field_validators
            or decorators.root_validators
            or decorators.model_validators
            or model.model_config.get("extra") == "forbid"
            or not model.model_config.keys() <= HARMLESS_CONFIG  # str_min_length, ...
        ):
            return _never
        self._building.add(model)
        try:
            checks: dict[str, Check] = {}
            required: list[str] = []
            for name, info in model.model_fields.items():
                if info.validation_alias is not None:
                    return _never
                key = info.alias or name
                checks[key] = self._field(info.annotation, info.metadata)
                if info.is_required():
                    required.append(key)
        finally:  # also on the early answer: a later field of the same model is not "itself"
            self._building.discard(model)
        return _fields(checks, tuple(required))

    def _field(self, annotation: Any, metadata: list[Any]) -> Check:
        """The field's type check, then its constraints on any value that is not None."""
        kind = self.check_for(annotation)
        limits: list[Check] = []
        for constraint in metadata:
            make = CONSTRAINTS.get(type(constraint))
            if make is None:
                return _never
            limits.append(make(constraint))
        return _constrained(kind, tuple(limits)) if limits else kind

    def check_for(self, annotation: Any) -> Check:
        leaf = LEAVES.get(annotation)
        if leaf is not None:
            return leaf
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return self.model(annotation)
        builder = self._generics.get(typing.get_origin(annotation))
        return builder(typing.get_args(annotation)) if builder is not None else _never

    def _union(self, args: tuple[Any, ...]) -> Check:
        exact = frozenset(arg for arg in args if arg in EXACT)
        return _union(tuple(self.check_for(a) for a in args if a not in exact), exact)

    def _list(self, args: tuple[Any, ...]) -> Check:
        return _list(self.check_for(args[0]) if args else _always)

    def _dict(self, args: tuple[Any, ...]) -> Check:
        if args and args[0] is not str:
            return _never
        return _dict(self.check_for(args[1]) if len(args) == 2 else _always)

    @staticmethod
    def _literal(args: tuple[Any, ...]) -> Check:
        if not all(type(arg) is str for arg in args):
            return _never
        allowed = frozenset(args)
        return lambda value: type(value) is str and value in allowed


@functools.cache
def fast_check(model: type[BaseModel]) -> Check:
    """The predicate for ``model`` (built once): True only for a body it accepts."""
    return _Builder().model(model)
