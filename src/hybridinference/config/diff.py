"""What changes between two configs: the answer to "what would a reload do?".

Lists of named things (models, routes) are matched by name, not position, so reordering
is not reported as a change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hybridinference.config.schema import GatewayConfig

#: how the items of a list at this key are identified
LIST_KEYS: dict[str, str | tuple[str, ...]] = {"models": "name", "routes": ("provider", "model")}


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # "added", "removed", "changed"
    path: str
    old: Any = None
    new: Any = None

    def __str__(self) -> str:
        if self.kind == "added":
            return f"+ {self.path}: {_short(self.new)}"
        if self.kind == "removed":
            return f"- {self.path}: {_short(self.old)}"
        return f"~ {self.path}: {_short(self.old)} -> {_short(self.new)}"


def diff_configs(old: GatewayConfig, new: GatewayConfig) -> list[Change]:
    return list(_diff(old.model_dump(mode="json"), new.model_dump(mode="json"), ""))


def _identity(item: Any, key: str | tuple[str, ...]) -> str:
    if not isinstance(item, dict):
        return repr(item)
    if isinstance(key, tuple):
        return "/".join(str(item.get(k)) for k in key)
    return str(item.get(key))


def _diff(old: Any, new: Any, path: str) -> Iterator[Change]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(old.keys() | new.keys()):
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                yield Change("removed", sub, old=old[key])
            elif key not in old:
                yield Change("added", sub, new=new[key])
            else:
                yield from _diff(old[key], new[key], sub)
        return
    name = path.rsplit(".", 1)[-1]
    if isinstance(old, list) and isinstance(new, list) and name in LIST_KEYS:
        key = LIST_KEYS[name]
        before = {_identity(item, key): item for item in old}
        after = {_identity(item, key): item for item in new}
        for ident in sorted(before.keys() | after.keys()):
            sub = f"{path}[{ident}]"
            if ident not in after:
                yield Change("removed", sub, old=before[ident])
            elif ident not in before:
                yield Change("added", sub, new=after[ident])
            else:
                yield from _diff(before[ident], after[ident], sub)
        return
    if old != new:
        yield Change("changed", path, old=old, new=new)


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
