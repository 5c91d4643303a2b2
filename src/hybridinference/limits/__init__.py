"""Rate limits and budgets, per key and per upstream account, in one process or shared
by every replica through Redis.

- ``model``: limits, admissions, decisions, settlements (frozen dataclasses).
- ``base``: the ``LimitBackend`` protocol; ``memory`` and ``redis_store`` implement it
  (``scripts``: the atomic Lua scripts).
- ``guard``: ``Limiter`` — failure policy, outage log and counters, settlement queue,
  lease renewal.
- ``estimate``: token estimate before dispatch, the UTC billing day and month.
- ``build``: config → ``Limiter``.
- ``upstream``: per-route provider account limits with AIMD back-off on upstream 429s.
- ``shared``: routing knowledge (circuit breakers, latency) shared between replicas.
"""
