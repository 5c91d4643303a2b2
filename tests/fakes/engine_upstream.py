"""A fake local inference engine (vLLM or SGLang flavour) on a real socket.

It is the fake OpenAI upstream (same model-name scripts) plus what a local engine has:

- ``GET /metrics`` in the Prometheus text format, with the engine's own metric names,
  from values a test sets (``running``, ``waiting``, ``kv_usage``);
- ``down``: while set, every endpoint (probes included) answers 503, like an engine
  that is restarting; tests flip it to make the engine flap.

Every /metrics scrape, probe and refused request is counted, so tests can wait for the gateway's
health monitor to have seen a change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from aiohttp import web

from tests.fakes.openai_upstream import FakeOpenAIUpstream

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

NAMES = {
    "vllm": (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:gpu_cache_usage_perc",
    ),
    "sglang": ("sglang:num_running_reqs", "sglang:num_queue_reqs", "sglang:token_usage"),
}


class FakeEngine(FakeOpenAIUpstream):
    def __init__(self, flavour: Literal["vllm", "sglang"] = "vllm") -> None:
        super().__init__()
        self.flavour = flavour
        self.running = 0.0
        self.waiting = 0.0
        self.kv_usage = 0.0
        self.down = False
        self.scrapes = 0
        self.probes = 0
        self.refused = 0  # requests (not probes) answered 503 while down
        self.app.router.add_get("/metrics", self.metrics)
        self.app.middlewares.append(self._gate)

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "GET" and request.path != "/metrics":
            self.probes += 1
        if self.down:
            self.refused += request.method == "POST"
            return web.json_response(
                {"error": {"message": "engine restarting", "type": "server_error"}}, status=503
            )
        return await handler(request)

    async def metrics(self, request: web.Request) -> web.Response:
        del request
        self.scrapes += 1
        running, waiting, kv = NAMES[self.flavour]
        label = '{model_name="local-model"}'
        text = (
            f"# HELP {running} Requests running.\n# TYPE {running} gauge\n"
            f"{running}{label} {self.running}\n"
            f"# TYPE {waiting} gauge\n{waiting}{label} {self.waiting}\n"
            f"# TYPE {kv} gauge\n{kv}{label} {self.kv_usage}\n"
            "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\n"
        )
        return web.Response(text=text, content_type="text/plain")
