"""Load of a local engine, read from its Prometheus ``/metrics`` (vLLM and SGLang).

The parser is a pure function over the text exposition format; the scraper is the only
I/O, run by the health monitor between requests — never on the request path. Series of
several models or engines behind one endpoint are summed (KV usage: the maximum).

Names understood::

    running   vllm:num_requests_running      sglang:num_running_reqs
    waiting   vllm:num_requests_waiting      sglang:num_queue_reqs
    kv usage  vllm:gpu_cache_usage_perc      sglang:token_usage
              vllm:kv_cache_usage_perc       (all fractions 0..1)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from hybridinference.errors import UpstreamProtocolError, UpstreamServerError

RUNNING = "running"
WAITING = "waiting"
KV = "kv"
METRICS: Mapping[str, str] = {
    "vllm:num_requests_running": RUNNING,
    "sglang:num_running_reqs": RUNNING,
    "vllm:num_requests_waiting": WAITING,
    "sglang:num_queue_reqs": WAITING,
    "vllm:gpu_cache_usage_perc": KV,
    "vllm:kv_cache_usage_perc": KV,
    "sglang:token_usage": KV,
}
MAX_METRICS_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class EngineLoad:
    running: float
    waiting: float
    kv_usage: float
    at: float  # monotonic seconds when scraped


def parse_metrics(text: str, at: float) -> EngineLoad | None:
    """The engine's load, or None when the text has none of the known series."""
    totals = {RUNNING: 0.0, WAITING: 0.0, KV: 0.0}
    seen = False
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        name_end = len(line)
        for stop in ("{", " "):
            position = line.find(stop)
            if 0 <= position < name_end:
                name_end = position
        kind = METRICS.get(line[:name_end])
        if kind is None:
            continue
        value = _sample_value(line)
        if value is None:
            continue
        seen = True
        totals[kind] = max(totals[kind], value) if kind == KV else totals[kind] + value
    if not seen:
        return None
    return EngineLoad(totals[RUNNING], totals[WAITING], totals[KV], at)


def _sample_value(line: str) -> float | None:
    rest = line[line.rfind("}") + 1 :] if "}" in line else line.split(None, 1)[-1]
    fields = rest.split()
    if not fields:
        return None
    try:
        value = float(fields[0])
    except ValueError:
        return None
    return value if value == value else None  # NaN says nothing


class MetricsScraper:
    """GETs one engine's /metrics with a pooled session owned by the routing layer."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self.url = url

    async def scrape(self, seconds: float, at: float) -> EngineLoad | None:
        async with (
            asyncio.timeout(seconds),
            self._session.get(self.url) as response,
        ):
            if response.status >= 300:
                raise UpstreamServerError(f"/metrics answered HTTP {response.status}")
            body = await response.content.read(MAX_METRICS_BYTES)
        try:
            text = body.decode()
        except UnicodeDecodeError as exc:
            raise UpstreamProtocolError("/metrics is not text") from exc
        return parse_metrics(text, at)
