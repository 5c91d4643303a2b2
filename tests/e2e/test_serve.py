"""The quick start as a user runs it: ``hybridinference serve`` on the quickstart config in
its own process, the README's curl command and SDK snippet (taken from the README and run
as printed, only the port changed) against the ``demo`` model,
then SIGTERM: the process exits cleanly and the log rows were written (graceful drain)."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command() -> list[str]:
    script = Path(sys.executable).parent / "hybridinference"
    if script.exists():
        return [str(script)]
    found = shutil.which("hybridinference")
    return [found] if found else [sys.executable, "-m", "hybridinference"]


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    data: Path
    log: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "HYBRIDINFERENCE_DATA": str(data),
        "HYBRIDINFERENCE_DASHBOARD_PORT": str(free_port()),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                *command(),
                "serve",
                "--config",
                "config/quickstart.yaml",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not start:\n" + log.read_text()
            time.sleep(0.05)
        yield Served(url, process, data, log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def readme_snippet(language: str, starts_with: str) -> str:
    """The README's fenced ``language`` block that starts with ``starts_with``."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for block in re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL):
        if block.lstrip().startswith(starts_with):
            return str(block)
    raise AssertionError(f"README has no {language} block starting with {starts_with!r}")


def on_port(snippet: str, url: str) -> str:
    assert "http://127.0.0.1:8080" in snippet
    return snippet.replace("http://127.0.0.1:8080", url)


def test_quickstart_serves_the_readme_snippets_and_drains_on_sigterm(served: Served) -> None:
    # the README's curl, as printed (only the port differs)
    curl = subprocess.run(
        ["bash", "-c", on_port(readme_snippet("sh", "curl"), served.url)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert curl.returncode == 0, curl.stderr
    curl_answer = json.loads(curl.stdout)["choices"][0]["message"]["content"]
    assert curl_answer

    # the README's SDK snippet, as printed
    sdk_run = subprocess.run(
        [
            sys.executable,
            "-c",
            on_port(readme_snippet("python", "# pip install openai"), served.url),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert sdk_run.returncode == 0, sdk_run.stderr
    printed = [line for line in sdk_run.stdout.splitlines() if line.strip()]
    assert len(printed) == 2, sdk_run.stdout  # the plain answer, then the streamed one
    assert printed[0] == curl_answer  # the demo model is deterministic

    # and the same through the SDK under strict validation
    client = OpenAI(base_url=served.url + "/v1", api_key="unused", _strict_response_validation=True)
    reply = client.chat.completions.create(
        model="demo", messages=[{"role": "user", "content": "Hello!"}]
    )
    assert reply.choices[0].message.content == curl_answer
    streamed = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": "Stream, please."}], stream=True
        )
        if chunk.choices
    )
    assert streamed == printed[1]

    served.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal it caught, so the exit
    # status says "terminated by SIGTERM" rather than 0
    assert served.process.wait(30) in (0, -signal.SIGTERM), served.log.read_text()
    output = served.log.read_text()
    assert "Traceback" not in output

    database = served.data / "hybridinference.db"
    conn = sqlite3.connect(database)
    try:
        rows = conn.execute(
            "SELECT model, route, status, stream, total_tokens FROM requests ORDER BY created_at"
        ).fetchall()
    finally:
        conn.close()
    assert [(m, r, s, st) for m, r, s, st, _ in rows] == [
        ("demo", "demo/demo-1", 200, 0),  # curl
        ("demo", "demo/demo-1", 200, 0),  # the README's SDK snippet
        ("demo", "demo/demo-1", 200, 1),
        ("demo", "demo/demo-1", 200, 0),  # strict SDK
        ("demo", "demo/demo-1", 200, 1),
    ]
    assert all(tokens > 0 for *_, tokens in rows)


def test_an_idle_keep_alive_connection_outlives_uvicorns_five_second_default(
    served: Served,
) -> None:
    """``server.keepalive_timeout`` (75 s) reaches uvicorn: a reverse proxy that reuses an
    upstream connection after 5 idle seconds must not find it closed under it (a 502)."""
    port = int(served.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/health")
        first = conn.getresponse()
        assert first.status == 200
        first.read()  # the whole answer, however many packets it took
        sock = conn.sock
        time.sleep(6)
        conn.request("GET", "/health")  # on the same connection: closed, this would fail
        assert conn.getresponse().status == 200
        assert conn.sock is sock
    finally:
        conn.close()
