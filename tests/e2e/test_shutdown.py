"""Shutdown with requests still in flight: once the graceful timeout is over, the server
cancels them; each still gets its one log row (cancelled), the upstream requests are
closed, and the log writer drains before the process would exit."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import openai

from hybridinference.app import create_app
from hybridinference.config import parse_config
from tests.e2e.helpers import HI, UPSTREAM_SECRET, config_with, sdk
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import run_gateway

STREAM_MODEL = "hang-midstream-shutdown"
PLAIN_MODEL = "hang-shutdown"


def test_requests_cut_by_shutdown_are_logged_as_cancelled(
    upstream_url: str, tmp_path: Path, upstream: FakeOpenAIUpstream
) -> None:
    env = {"FAKE_KEY": UPSTREAM_SECRET}
    config = parse_config(config_with(upstream_url, tmp_path, STREAM_MODEL, PLAIN_MODEL), env, "t")
    app = create_app(config, env, rng=random.Random(1))
    gateway = run_gateway(app, tmp_path / "gw.db", graceful_timeout=0.3)
    client = sdk(gateway)
    errors: list[Exception] = []
    streamed: list[str] = []

    def stream() -> None:
        try:
            for chunk in client.chat.completions.create(
                model=STREAM_MODEL,
                messages=HI,
                stream=True,
                extra_headers={"X-Request-ID": "cut-stream"},
            ):
                streamed.append(chunk.choices[0].delta.content or "")
        except openai.APIError as exc:
            errors.append(exc)

    def plain() -> None:
        try:
            client.chat.completions.create(
                model=PLAIN_MODEL, messages=HI, extra_headers={"X-Request-ID": "cut-plain"}
            )
        except openai.APIError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=stream), threading.Thread(target=plain)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10  # both requests have reached the upstream
    while len([r for r in upstream.log.bodies("hang-") if "shutdown" in r["model"]]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    while "".join(streamed) != "Hello from":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    gateway.stop()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 2  # neither client was left hanging
    rows = {r["request_id"]: r for r in gateway.rows()}  # the server is gone: all written
    assert set(rows) == {"cut-stream", "cut-plain"}
    for row in rows.values():
        assert (row["status"], row["cancelled"], row["error_type"]) == (499, 1, "cancelled")
    assert rows["cut-stream"]["stream"] == 1
    deadline = time.monotonic() + 5  # the upstream notices the closed connections on its own
    while not {STREAM_MODEL, PLAIN_MODEL} <= {m for m, _ in upstream.log.cancelled}:
        assert time.monotonic() < deadline, upstream.log.cancelled
        time.sleep(0.01)
