"""Dashboard sign-in sessions: who is signed in, with which credential, and their CSRF token.

The credential (admin token or API key) stays in this process's memory; the browser only
holds a random session id in a Secure, HttpOnly, SameSite=Strict cookie. Sessions are
bounded (the oldest is dropped when full), expire after an idle period and are lost when
the process restarts (signing in again is the recovery).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

COOKIE_NAME = "hi_dashboard"
CSRF_HEADER = "x-csrf-token"


class Role(StrEnum):
    OPERATOR = "operator"  # signed in with the admin token
    KEY_HOLDER = "key"  # signed in with an API key


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    role: Role
    credential: str  # never sent to the browser
    csrf: str
    label: str  # what the page shows: "operator" or the key's prefix
    expires_at: float

    def public(self) -> dict[str, str]:
        return {"role": self.role.value, "label": self.label, "csrf": self.csrf}

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(self.csrf.encode(), presented.encode())


class SessionStore:
    def __init__(
        self, *, ttl_seconds: float, clock: Callable[[], float], max_sessions: int = 10_000
    ) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._max = max_sessions
        self._sessions: dict[str, Session] = {}

    @property
    def ttl_seconds(self) -> float:
        return self._ttl

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    def create(self, role: Role, credential: str, label: str) -> Session:
        while len(self._sessions) >= self._max:
            del self._sessions[next(iter(self._sessions))]
        session = Session(
            id=secrets.token_urlsafe(32),
            role=role,
            credential=credential,
            csrf=secrets.token_urlsafe(32),
            label=label,
            expires_at=self._clock() + self._ttl,
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session for this id, its idle expiry pushed forward; None otherwise."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if session.expires_at <= now:
            del self._sessions[session_id]
            return None
        renewed = replace(session, expires_at=now + self._ttl)
        # move to the end: the dict's order is the eviction order
        del self._sessions[session_id]
        self._sessions[session_id] = renewed
        return renewed

    def drop(self, session_id: str | None) -> None:
        if session_id:
            self._sessions.pop(session_id, None)


class SignInThrottle:
    """Failed sign-ins per client address: after ``limit`` failures within ``window``
    seconds that address is refused (even with a right secret) until the oldest failure
    ages out, so guessing a weak admin token stays slow. Behind a proxy every browser shares
    the proxy's address: a flood of bad guesses then delays everyone's sign-in by at most
    ``window`` seconds."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        limit: int = 10,
        window: float = 60.0,
        max_clients: int = 10_000,
    ) -> None:
        self._clock = clock
        self._limit = limit
        self._window = window
        self._max_clients = max_clients
        self._failures: dict[str, list[float]] = {}

    def _recent(self, client: str) -> list[float]:
        cutoff = self._clock() - self._window
        recent = [t for t in self._failures.get(client, ()) if t > cutoff]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        return recent

    def retry_after(self, client: str) -> float | None:
        """Seconds until this client may try again; None when it may now."""
        recent = self._recent(client)
        if len(recent) < self._limit:
            return None
        return max(recent[0] + self._window - self._clock(), 0.0)

    def failed(self, client: str) -> None:
        recent = self._recent(client)
        while client not in self._failures and len(self._failures) >= self._max_clients:
            del self._failures[next(iter(self._failures))]
        self._failures[client] = [*recent[-(self._limit - 1) :], self._clock()]
