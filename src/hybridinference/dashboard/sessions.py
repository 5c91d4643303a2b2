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
