"""Soak: N minutes of mixed load with random upstream faults against a real gateway process.

A ``hybridinference serve`` subprocess (SQLite request log, auth on, three API keys)
fronts the scripted fake upstream of the test suite (run in this process). Clients send
streamed and plain chat requests over several models and keys at a fixed rate; a share
of them name a scripted fault (503s that fail over, 5xx, 429, garbage JSON, truncated or
malformed streams, a connection dropped mid-stream, a slow drip). Each request has one
expected outcome by its model, so any other outcome is an error *beyond those injected*.

Verdicts (all must hold):

- memory: the gateway's RSS at the end is within 10 % of its level after warm-up
  (the first 10 % of the run, at least 30 s);
- errors: no outcome other than the one the request's script calls for;
- log rows: after a graceful stop, the request log has exactly one row per request sent.

    python bench/soak/run.py --minutes 30 [--rate 40] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.fakes.openai_upstream import FakeOpenAIUpstream  # noqa: E402
from tests.fakes.servers import run_aiohttp  # noqa: E402

ADMIN = "soak-admin-token"
TEXT = "Hello from the fake upstream."
#: model -> (share of requests, what a client must see: "ok", an HTTP status, or "inband")
MIX: dict[str, tuple[float, str]] = {
    "ok-a": (0.30, "ok"),
    "ok-b": (0.20, "ok"),
    "drip-20-c": (0.10, "ok"),
    "failover": (0.10, "ok"),  # a 503 on the first route, then the good one
    "status-500": (0.06, "502"),
    "ratelimit": (0.04, "429"),  # parks its route: 429 or 503 afterwards
    "garbage": (0.06, "bad"),  # 502 plain, in-band error streamed
    "truncated": (0.05, "midstream"),  # streams only: a plain answer is whole
    "disconnect-midstream": (0.05, "midstream"),
    "error-midstream": (0.04, "midstream"),
}


@dataclass
class Tally:
    sent: int = 0
    transport_errors: int = 0  # no HTTP answer at all (e.g. a keep-alive race)
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    memory: list[tuple[float, float]] = field(default_factory=list)  # (seconds, RSS MiB)


def config_text(upstream: str, port: int, workdir: Path) -> str:
    models = [m for m in MIX if m != "failover"]
    routes = "\n".join(
        f"  - {{name: {m}, routes: [{{provider: fake, model: {m}}}]}}" for m in models
    )
    return f"""server: {{host: 127.0.0.1, port: {port}}}
auth: {{required: true, admin_token_env: SOAK_ADMIN}}
storage: {{url: "sqlite:///{workdir}/soak.db", flush_interval: 0.2}}
timeouts: {{connect: 2, first_byte: 5, idle: 5, total: 20}}
health: {{probes: false, failure_threshold: 1000000, min_samples: 1000000}}
observability: {{log_format: json}}
dashboard: {{enabled: false}}
providers:
  fake: {{kind: openai, base_url: "{upstream}/v1"}}
models:
{routes}
  - name: failover
    routes:
      - {{provider: fake, model: flaky-1000000000, weight: 1}}
      - {{provider: fake, model: ok-fo, weight: 0}}
"""


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def admin_key(url: str, name: str) -> str:
    request = urllib.request.Request(
        url + "/admin/keys",
        data=json.dumps({"name": name}).encode(),
        headers={"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["key"])


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    until = time.monotonic() + 60
    while time.monotonic() < until:
        if proc.poll() is not None:
            raise RuntimeError("the gateway exited; see its log")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the gateway did not start")


async def one_request(
    session: aiohttp.ClientSession, url: str, key: str, model: str, stream: bool
) -> str:
    """What the client saw: "ok", "inband" (an error event in a 200 stream), a status."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    headers = {"Authorization": f"Bearer {key}"}
    async with session.post(url + "/v1/chat/completions", json=body, headers=headers) as resp:
        if resp.status != 200:
            await resp.read()
            return str(resp.status)
        if not stream:
            data = await resp.json()
            return "ok" if data["choices"][0]["message"]["content"] == TEXT else "wrong-text"
        text, error = "", False
        async for line in resp.content:
            if not line.startswith(b"data: {"):
                continue
            event = json.loads(line[6:])
            if "error" in event:
                error = True
            for choice in event.get("choices", ()):
                text += choice["delta"].get("content") or ""
        if error:
            return "inband"
        return "ok" if text == TEXT else "wrong-text"


def expected(kind: str, seen: str, stream: bool) -> bool:
    if kind == "ok":
        return seen == "ok"
    if kind == "bad":
        return seen == "inband" if stream else seen == "502"
    if kind == "midstream":
        return seen == ("inband" if stream else "ok")
    if kind == "429":
        return seen in ("429", "503")
    return seen == kind


async def load(url: str, keys: list[str], seconds: float, rate: float, tally: Tally) -> None:
    rng = random.Random(7)
    names = list(MIX)
    weights = [MIX[m][0] for m in names]
    timeout = aiohttp.ClientTimeout(total=30)
    pending: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def run(model: str, key: str, stream: bool) -> None:
            try:
                seen = await one_request(session, url, key, model, stream)
            except Exception as exc:  # a transport failure the client saw is an outcome too
                seen = type(exc).__name__
                tally.transport_errors += 1
            tally.outcomes[seen] += 1
            if not expected(MIX[model][1], seen, stream):
                tally.unexpected[f"{model} stream={stream}: {seen}"] += 1

        start = time.monotonic()
        while (due := tally.sent / rate) < seconds:
            await asyncio.sleep(max(0.0, start + due - time.monotonic()))
            model = rng.choices(names, weights)[0]
            task = asyncio.create_task(run(model, rng.choice(keys), rng.random() < 0.5))
            pending.add(task)
            task.add_done_callback(pending.discard)
            tally.sent += 1
        await asyncio.gather(*pending)


async def sample_memory(pid: int, tally: Tally, started: float, every: float) -> None:
    while True:
        tally.memory.append((round(time.monotonic() - started, 1), round(rss_mib(pid), 1)))
        await asyncio.sleep(every)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    seconds = args.minutes * 60
    upstream = FakeOpenAIUpstream()
    fake = run_aiohttp(upstream.app, "soak-upstream")
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    port = free_port()
    config = workdir / "soak.yaml"
    config.write_text(config_text(fake.url, port, workdir))
    env = {**os.environ, "SOAK_ADMIN": ADMIN, "HYBRIDINFERENCE_KEY_SECRET": "soak-secret"}
    log = (workdir / "gateway.log").open("wb")
    argv = [sys.executable, "-m", "hybridinference", "serve", "--config", str(config)]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    tally = Tally()
    try:
        wait_up(url, proc)
        keys = [admin_key(url, f"soak-{n}") for n in range(3)]
        result = asyncio.run(drive(url, keys, seconds, args.rate, proc.pid, tally, upstream))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        fake.stop()
    with sqlite3.connect(workdir / "soak.db") as db:
        rows = db.execute("SELECT count(*) FROM requests WHERE endpoint = 'chat'").fetchone()[0]
    # a request that got no HTTP answer may never have reached the gateway (a keep-alive
    # race): it is in the log when the gateway served it, and need not be otherwise
    served_low = tally.sent - tally.transport_errors
    rows_ok = served_low <= rows <= tally.sent
    result.update(
        log_rows=rows,
        transport_errors=tally.transport_errors,
        log_rows_match=rows_ok,
        workdir=str(workdir),
    )
    result["pass"] = bool(result["memory_ok"] and not tally.unexpected and rows_ok)
    samples = result.pop("memory_samples")
    text = json.dumps(result, indent=2) + "\n" + json.dumps({"memory_samples": samples})
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if result["pass"] else 1


async def drive(
    url: str,
    keys: list[str],
    seconds: float,
    rate: float,
    pid: int,
    tally: Tally,
    upstream: FakeOpenAIUpstream,
) -> dict[str, object]:
    started = time.monotonic()
    sampler = asyncio.create_task(sample_memory(pid, tally, started, max(1.0, seconds / 120)))
    forget = asyncio.create_task(forget_upstream_log(upstream))
    await load(url, keys, seconds, rate, tally)
    sampler.cancel()
    forget.cancel()
    await asyncio.sleep(1)  # let the last rows reach the log queue
    warm = max(30.0, seconds * 0.1)
    after_warm = [rss for t, rss in tally.memory if t >= warm] or [tally.memory[-1][1]]
    baseline, final, peak = after_warm[0], after_warm[-1], max(after_warm)
    summary = asdict(tally)
    summary["memory"] = tally.memory[:: max(1, len(tally.memory) // 40)]
    return {
        "seconds": round(time.monotonic() - started, 1),
        "rate": rate,
        "requests": tally.sent,
        "outcomes": dict(tally.outcomes),
        "unexpected": dict(tally.unexpected),
        "rss_after_warmup_mib": baseline,
        "rss_final_mib": final,
        "rss_peak_after_warmup_mib": peak,
        "memory_growth": round(final / baseline - 1, 4),
        "memory_ok": final <= baseline * 1.10,
        "memory_samples": summary["memory"],
    }


async def forget_upstream_log(upstream: FakeOpenAIUpstream) -> None:
    """The fake records every request; the soak has no use for that history."""
    while True:
        await asyncio.sleep(10)
        upstream.log.received.clear()
        upstream.log.cancelled.clear()
        upstream.log.completed.clear()
        upstream.log.progress.clear()


def free_port() -> int:
    """A free loopback port (closed again before the gateway binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    sys.exit(main())
