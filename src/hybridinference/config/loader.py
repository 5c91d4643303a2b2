"""Load a YAML config file: ``${VAR}`` / ``${VAR:-default}`` interpolation, then validation.

Every failure becomes a ``ConfigError`` whose message names the file, the field and
what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import get_args

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from hybridinference.config.schema import GatewayConfig, ProviderConfig
from hybridinference.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _interpolate(value: object, env: Mapping[str, str], where: str) -> object:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = env.get(name)
            if default is not None and not value:
                return default  # the shell's ":-": unset or empty takes the default
            if value is not None:
                return value
            raise ConfigError(f"{where}: environment variable {name} is not set (no default)")

        return _VAR.sub(substitute, value)
    if isinstance(value, list):
        return [_interpolate(item, env, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {
            k: _interpolate(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()
        }
    return value


def _provider_kinds() -> frozenset[str]:
    """Every ``kind`` tag of the provider union (pydantic puts it in error locations)."""
    union = get_args(ProviderConfig)[0]
    return frozenset(
        tag for model in get_args(union) for tag in get_args(model.model_fields["kind"].annotation)
    )


_KINDS = _provider_kinds()


def _format_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif index == 2 and loc[0] == "providers" and part in _KINDS:
            continue  # the discriminated union's tag adds no information
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def parse_config(data: object, env: Mapping[str, str], source: str) -> GatewayConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        interpolated = _interpolate(data, env, "")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    try:
        return GatewayConfig.model_validate(interpolated)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors(include_url=False)]
        raise ConfigError(f"{source}: invalid configuration\n  " + "\n  ".join(problems)) from None


def _kinds_expected() -> str:
    return "expected one of: " + ", ".join(sorted(_KINDS))


#: pydantic error type → (suffix added to the location, message) in YAML terms
_MESSAGES: Mapping[str, Callable[[ErrorDetails], tuple[str, str]]] = {
    "extra_forbidden": lambda _: ("", "unknown field (not allowed here; check the spelling)"),
    "tuple_type": lambda _: ("", "expected a list"),
    "union_tag_not_found": lambda _: (".kind", f"missing ({_kinds_expected()})"),
    "union_tag_invalid": lambda err: (
        ".kind",
        f"unknown kind {err.get('ctx', {}).get('tag')!r} ({_kinds_expected()})",
    ),
}


def _describe(err: ErrorDetails) -> str:
    loc = _format_location(tuple(err["loc"]))
    special = _MESSAGES.get(err["type"])
    if special is None:
        return f"{loc}: {err['msg'].removeprefix('Value error, ')}"
    suffix, message = special(err)
    return f"{loc}{suffix}: {message}"


def load_config(path: str | Path, env: Mapping[str, str]) -> GatewayConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_config(data, env, str(path))
