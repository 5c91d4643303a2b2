"""Run servers on real sockets (127.0.0.1, port 0) in background threads with their own
event loops, so sync SDK clients and async tests can both talk to them."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from aiohttp import web
from fastapi import FastAPI

from hybridinference.state import AppState


def bind_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


class LoopThread:
    """An event loop in a daemon thread; ``call`` runs a coroutine on it and waits."""

    def __init__(self, name: str) -> None:
        self.loop = uvloop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@dataclass
class RunningAiohttp:
    url: str
    port: int
    _thread: LoopThread
    _runner: web.AppRunner

    def stop(self) -> None:
        self._thread.call(self._runner.cleanup())
        self._thread.stop()


def run_aiohttp(app: web.Application, name: str = "fake-upstream") -> RunningAiohttp:
    thread = LoopThread(name)
    sock = bind_socket()
    runner = web.AppRunner(app, handle_signals=False, access_log=None)

    async def start() -> None:
        await runner.setup()
        await web.SockSite(runner, sock).start()

    thread.call(start())
    port = sock.getsockname()[1]
    return RunningAiohttp(f"http://127.0.0.1:{port}", port, thread, runner)


@dataclass
class RunningGateway:
    url: str
    port: int
    app: FastAPI
    db_path: Path
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def state(self) -> AppState:
        return self.app.state.hybridinference  # type: ignore[no-any-return]

    def rows(self, where: str = "1=1", params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.db_path)
        conn.row_factory = sqlite3.Row
        try:
            return [
                dict(r)
                for r in conn.execute(
                    f"SELECT * FROM requests WHERE {where} ORDER BY created_at", params
                )
            ]
        finally:
            conn.close()

    def wait_rows(
        self, count: int, where: str = "1=1", params: tuple[Any, ...] = (), timeout: float = 10
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows(where, params)
            if len(rows) >= count or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def run_gateway(
    app: FastAPI,
    db_path: Path,
    ready: Callable[[], bool] | None = None,
    graceful_timeout: float = 5,
) -> RunningGateway:
    sock = bind_socket()
    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=graceful_timeout,
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]

    def serve() -> None:
        uvloop.run(server.serve(sockets=[sock]))

    thread = threading.Thread(target=serve, name="gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("gateway did not start")
        time.sleep(0.01)
    port = sock.getsockname()[1]
    return RunningGateway(f"http://127.0.0.1:{port}", port, app, db_path, server, thread)
