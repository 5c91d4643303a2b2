"""The backend contract every limiter store meets (in-process or Redis).

``admit`` checks every limit of the admission and, only when all pass, records it — as
one atomic step, so concurrent processes can never admit more than the limit between
them. ``settle`` corrects the reservation with real usage and frees the concurrency
slot. ``renew`` extends the leases of requests still running: a slot whose process died
is freed when its lease runs out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hybridinference.limits.model import Admission, Decision, Settlement


class LimitBackend(Protocol):
    name: str

    async def admit(self, admission: Admission) -> Decision: ...

    async def settle(self, settlements: Sequence[Settlement]) -> None: ...

    async def renew(self, leases: Sequence[Admission]) -> None: ...

    async def ping(self) -> None:
        """Raises when the backend cannot be reached."""

    async def aclose(self) -> None: ...
