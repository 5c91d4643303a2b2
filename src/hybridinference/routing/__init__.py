"""Routing: which route serves a request, and what happens when it is slow or fails.

- ``manager``: ``RoutingManager`` resolves a model, filters and orders its routes.
- ``legs``: runs the attempts (failover, hedging) and records every outcome;
  ``openers``: JSON vs stream legs, first-content detection, usage accounting.
- ``strategies``: name → strategy class (weighted, round_robin, least_busy, latency,
  cost, local_first, slo).
- ``stats``: per-route TTFT windows and EWMAs; ``circuit``: the passive breaker;
  ``health``: the probe/scrape monitor task; ``engine_load``: vLLM/SGLang /metrics.
- ``hedging``: hedge delay and budget; ``quota``/``pricing``: daily quotas, shadow prices
  and expected costs; ``options``: OpenRouter-style request options; ``request``: cheap
  request estimates.
- ``routes``: ``Route`` and ``ModelRoutes``; ``trace``: ``RequestTrace``, the attempt
  record; ``build``: config → ``Routing``.
"""
