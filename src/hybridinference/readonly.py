"""``@readonly``: a dataclass that is frozen to the type checker, built at plain speed.

A frozen dataclass's ``__init__`` sets every field through ``object.__setattr__``; for
the few dataclasses built on every request (the log row has 20 fields) that was ~6 % of
the event loop's instructions per request (docs/performance.md). These classes are
declared with ``@readonly`` instead: mypy reports any assignment to a field, exactly as
for ``frozen=True`` (``dataclass_transform(frozen_default=True)``), and they keep the
frozen class's hash; only the runtime check on assignment is gone.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

from typing_extensions import dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True)
def readonly(cls: type[T]) -> type[T]:
    return dataclasses.dataclass(slots=True, unsafe_hash=True)(cls)
