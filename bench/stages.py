"""Where one request's critical path goes: the gateway in this process (uvicorn, the
benchmark's config, the mock upstream in its own), driven at a fixed rate over one
connection by ``loadgen.py``, with timestamps taken at each stage by wrapping the
functions named below; prints the median microseconds between consecutive stages.

    python bench/stages.py [--rate 200] [--seconds 8] [--stream | --slow]

Stages: the request's last byte parsed (uvicorn) → the middleware → the key check
begins → ends → the body is read → validated → the routing manager is called → its
plan is made → the adapter is called → the upstream write → the upstream's first
bytes → the first body bytes sent to the client → their write done (the system call
included); without ``--stream`` the way back in more detail: the upstream's first bytes →
its head parsed → the adapter returns → the manager returns → the answer is called → its
head is sent → its body → written. A diagnostic, not a benchmark: the wrappers add a few
microseconds each.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import uvicorn
import uvloop
from uvicorn.protocols.http import httptools_impl

import scenarios
import targets
from hybridinference.adapters import h1, openai_compat
from hybridinference.app import create_app
from hybridinference.config.loader import load_config
from hybridinference.gateway import auth, inference, middleware, responses
from hybridinference.routing import manager

STAGES = (
    "in",
    "middleware",
    "auth",
    "authenticated",
    "body",
    "validate",
    "manager",
    "planned",
    "adapter",
    "upstream write",
    "upstream first",
    "client first",
    "client written",
)
#: the answer's way back, non-streaming only (a stream has no whole answer to wait for)
ANSWER_STAGES = (
    "upstream first",
    "head ready",
    "adapter done",
    "manager done",
    "answer call",
    "start sent",
    "client first",
    "client written",
)


class Clock:
    def __init__(self, stages: tuple[str, ...]) -> None:
        self.stages = stages
        self.current: dict[str, float] = {}
        self.done: list[dict[str, float]] = []

    def mark(self, stage: str) -> None:
        self.current.setdefault(stage, time.perf_counter())

    def complete(self) -> None:
        if set(self.stages) <= self.current.keys():
            self.done.append(self.current)
        self.current = {}


def instrument(clock: Clock) -> None:
    def mark(owner: Any, name: str, stage: str, *, on_return: bool = False) -> None:
        """Wrap ``owner.name`` to mark ``stage`` when it is called (or when it returns)."""
        original: Callable[..., Any] = getattr(owner, name)
        if asyncio.iscoroutinefunction(original):

            async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
                if not on_return:
                    clock.mark(stage)
                    return await original(*args, **kwargs)
                result = await original(*args, **kwargs)
                clock.mark(stage)
                return result

            setattr(owner, name, wrapped_async)
        else:

            def wrapped(*args: Any, **kwargs: Any) -> Any:
                if not on_return:
                    clock.mark(stage)
                    return original(*args, **kwargs)
                result = original(*args, **kwargs)
                if inspect.isawaitable(result):  # hands back a coroutine: marked when done
                    return _marked(result)
                clock.mark(stage)
                return result

            async def _marked(awaitable: Any) -> Any:
                result = await awaitable
                clock.mark(stage)
                return result

            setattr(owner, name, wrapped)

    mark(httptools_impl.HttpToolsProtocol, "on_message_complete", "in")
    mark(middleware.RequestContextMiddleware, "__call__", "middleware")
    mark(auth.KeyCache, "authenticate", "auth")
    mark(auth.KeyCache, "authenticate", "authenticated", on_return=True)
    mark(inference, "read_json_object", "body")
    mark(inference, "validate", "validate")
    mark(manager.RoutingManager, "complete", "manager")
    mark(manager.RoutingManager, "open_stream", "manager")
    mark(manager.RoutingManager, "_plan", "planned", on_return=True)
    mark(openai_compat.OpenAICompatAdapter, "complete", "adapter")
    mark(openai_compat.OpenAICompatAdapter, "stream", "adapter")
    mark(h1.Connection, "send", "upstream write")
    mark(h1.Connection, "data_received", "upstream first")
    mark(h1.ConnectionPool, "request", "head ready", on_return=True)
    mark(openai_compat.OpenAICompatAdapter, "complete", "adapter done", on_return=True)
    mark(manager.RoutingManager, "complete", "manager done", on_return=True)
    mark(responses.AnswerResponse, "__call__", "answer call")
    original_send = httptools_impl.RequestResponseCycle.send

    async def send(self: httptools_impl.RequestResponseCycle, message: Any) -> None:
        if message["type"] == "http.response.start":
            clock.mark("start sent")
        if message["type"] == "http.response.body":
            clock.mark("client first")
        await original_send(self, message)
        if message["type"] == "http.response.body":
            clock.mark("client written")
            if not message.get("more_body"):
                clock.complete()

    httptools_impl.RequestResponseCycle.send = send  # type: ignore[method-assign]


async def drive(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="hybridinference-stages-"))
    mock = targets.start_mock("1", workdir)
    try:
        port = targets.free_port()
        env = {**os.environ, **targets.gateway_env()}
        config_path = targets.gateway_config(workdir, mock.port, port)
        app = create_app(load_config(config_path, env), env)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=port,
                loop="none",
                http="httptools",
                access_log=False,
                log_config=None,
                proxy_headers=False,
            )
        )
        serving = asyncio.create_task(server.serve())
        for _ in range(600):  # up to 30 s to start
            if server.started:
                break
            await asyncio.sleep(0.05)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/admin/keys",
            data=b'{"name":"stages"}',
            headers={"Authorization": f"Bearer {targets.ADMIN_TOKEN}"},
        )
        reply = await asyncio.to_thread(lambda: urllib.request.urlopen(request).read())
        key = json.loads(reply)["key"]
        kind = "stream" if args.stream else ("slow" if args.slow else "instant")
        command = [
            "taskset", "-c", "1", sys.executable, str(Path(__file__).parent / "loadgen.py"),
            f"http://127.0.0.1:{port}/v1/chat/completions",
            "--rate", str(args.rate), "--duration", str(args.seconds),
            "--connections", str(args.connections),
            "--body", scenarios.body(kind, args.stream),
            "--header", f"Authorization: Bearer {key}",
        ]  # fmt: skip
        if args.stream:
            command += ["--stream", "--gap-ms", str(scenarios.STREAM_GAP_MS)]
        load = await asyncio.create_subprocess_exec(*command, stdout=subprocess.DEVNULL)
        await load.wait()
        server.should_exit = True
        await serving
    finally:
        mock.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument(
        "--slow",
        action="store_true",
        help="the upstream answers in 50 ms, as in the rate scenarios",
    )
    parser.add_argument(
        "--connections",
        type=int,
        default=1,
        help="stages are timed only for requests that do not overlap (one in flight at a time)",
    )
    args = parser.parse_args()
    shared = STAGES.index(ANSWER_STAGES[0])  # the answer's way back replaces the tail
    stages = STAGES if args.stream else STAGES[:shared] + ANSWER_STAGES
    clock = Clock(stages)
    instrument(clock)
    os.sched_setaffinity(0, {0})
    uvloop.run(drive(args))
    print(f"{len(clock.done)} requests; median µs between stages:")
    for first, second in itertools.pairwise(stages):
        gap = statistics.median(d[second] - d[first] for d in clock.done) * 1e6
        print(f"  {first} → {second}: {gap:.0f}")


if __name__ == "__main__":
    main()
