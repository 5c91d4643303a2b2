"""The measurements behind three choices in docs/performance.md: the JSON library, the
upstream HTTP client and the ASGI server. Everything pinned to one CPU; CPU time per
request/operation is reported (robust on a shared machine), medians over rounds.

    python bench/choices.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
import uvloop

import scenarios
import targets
from hybridinference.adapters import h1
from scenarios import Layout

REQUEST = {
    "model": "mock",
    "messages": [
        {"role": "system", "content": "You are a helpful assistant. " * 8},
        {"role": "user", "content": "Summarise the following text. " + "lorem ipsum " * 40},
    ],
    "temperature": 0.2,
    "max_tokens": 256,
    "stream": False,
    "chat_template_kwargs": {"enable_thinking": False},
}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def per_op(fn: Callable[[], object], n: int) -> float:
    """CPU µs per call of ``fn``."""
    start = cpu()
    for _ in range(n):
        fn()
    return (cpu() - start) * 1e6 / n


def json_libraries(rounds: int) -> dict[str, list[float]]:
    raw = orjson.dumps(REQUEST)
    cases = {
        "orjson loads+dumps": lambda: orjson.dumps(orjson.loads(raw)),
        "json loads+dumps": lambda: json.dumps(json.loads(raw), separators=(",", ":")).encode(),
    }
    return {name: [per_op(fn, 20000) for _ in range(rounds)] for name, fn in cases.items()}


async def _drive(send: Callable[[], object], n: int, concurrency: int) -> float:
    async def worker(count: int) -> None:
        for _ in range(count):
            await send()  # type: ignore[misc]

    start = cpu()
    await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    return (cpu() - start) * 1e6 / n


async def http_clients(url: str, n: int) -> dict[str, float]:
    import aiohttp
    import httpx

    body = orjson.dumps({"model": "mock", "messages": []})
    headers = {"Content-Type": "application/json"}
    out: dict[str, float] = {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:

        async def aio() -> None:
            async with session.post(url, data=body, headers=headers) as response:
                orjson.loads(await response.read())

        await _drive(aio, 200, 16)
        out["aiohttp"] = await _drive(aio, n, 16)
    async with httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=64)) as client:

        async def hx() -> None:
            response = await client.post(url, content=body, headers=headers)
            orjson.loads(response.content)

        await _drive(hx, 200, 16)
        out["httpx"] = await _drive(hx, n, 16)
    parts = urlsplit(url)
    pool = h1.ConnectionPool(f"{parts.scheme}://{parts.netloc}", connect_timeout=5.0)
    block = h1.ConnectionPool.header_block(headers)

    async def lean() -> None:
        response = await pool.request(b"POST", parts.path, block, body, 30.0)
        try:
            orjson.loads(await response.read(1 << 26, 30.0))
        finally:
            response.release()

    await _drive(lean, 200, 16)
    out["h1 (adapters/h1.py)"] = await _drive(lean, n, 16)
    await pool.aclose()
    return out


SERVERS = {
    "uvicorn + uvloop + httptools": ["--loop", "uvloop", "--http", "httptools"],
    "uvicorn + asyncio + h11": ["--loop", "asyncio", "--http", "h11"],
}


def asgi_servers(rounds: int, seconds: float) -> dict[str, list[dict[str, float]]]:
    layout = Layout()
    workdir = Path(tempfile.mkdtemp(prefix="hybridinference-choices-"))
    procs: list[targets.Proc] = []
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in SERVERS}
    try:
        mock = targets.start_mock(layout.load, workdir)
        procs.append(mock)
        gateways = {}
        for name, flags in SERVERS.items():
            sub = workdir / str(len(gateways))
            sub.mkdir()
            config = targets.gateway_config(sub, mock.port, targets.free_port())
            port = str(targets.config_port(config))
            argv = [sys.executable, "-m", "uvicorn", "hybridinference.cli:app_from_env"]
            argv += ["--factory", "--host", "127.0.0.1", "--port", port, *flags]
            argv += ["--no-access-log", "--log-level", "warning"]
            env = {"HYBRIDINFERENCE_CONFIG": str(config), **targets.gateway_env()}
            proc = targets.spawn(name[:7], argv, layout.server, int(port), sub, env)
            procs.append(proc)
            proc.key = targets.create_key(proc)
            gateways[name] = proc
        for _ in range(rounds):
            for name, proc in gateways.items():
                row = scenarios.fixed_rate(proc, 200, seconds, layout)
                row["rps"] = scenarios.wrk(proc, workdir, seconds, layout)["rps"]
                rows[name].append(row)
    finally:
        for proc in procs:
            proc.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    os.sched_setaffinity(0, {1})
    print("| JSON (request of ~900 bytes) | CPU µs per loads+dumps |\n|---|---|")
    for name, values in json_libraries(args.rounds).items():
        print(f"| {name} | {statistics.median(values):.1f} |")
    workdir = Path(tempfile.mkdtemp(prefix="hybridinference-choices-"))
    mock = targets.start_mock("0", workdir)
    try:
        targets.wait_ready(mock, b'{"model":"mock"}', {})
        results = [uvloop.run(http_clients(mock.url, 4000)) for _ in range(args.rounds)]
    finally:
        mock.stop()
    print("\n| HTTP client (16 concurrent, keep-alive) | client CPU µs per request |\n|---|---|")
    for name in results[0]:
        print(f"| {name} | {statistics.median(r[name] for r in results):.0f} |")
    rows = asgi_servers(args.rounds, args.seconds)
    print(
        "\n| ASGI server (gateway, 1 worker) | CPU µs/request @ 200/s | p50 ms (upstream 50 ms) "
        "| wrk requests/s |\n|---|---|---|---|"
    )
    for name, values in rows.items():
        print(
            f"| {name} | {statistics.median(r['cpu_us'] for r in values):.0f} "
            f"| {statistics.median(r['p50'] for r in values):.2f} "
            f"| {statistics.median(r['rps'] for r in values):.0f} |"
        )


if __name__ == "__main__":
    main()
