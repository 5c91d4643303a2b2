"""Acceptance: the config file changes under load while ``hybridinference serve --workers
2`` runs as a real process tree. Streamed and non-streamed requests keep flowing with
zero failures; both worker processes report the new version (``/metrics`` in
multiprocess mode sums one per process and version; ``/admin/config`` names the pid)
within 5 s; an invalid edit is refused with a clear message while every process keeps
serving the old config. Then SIGHUP to uvicorn's supervisor: an invalid file leaves the
workers in place, a valid one replaces them all with workers on the new version."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from hybridinference.config import load_config
from hybridinference.config.reload import config_version
from tests.fakes.processes import stop, wait_serving
from tests.integration.test_metrics_workers import free_port

ADMIN = "admin-token-for-the-reload-test"
HEADERS = {"Authorization": f"Bearer {ADMIN}"}
ENV = {
    "PATH": "/usr/bin:/bin",
    "FAKE_KEY": "sk-upstream-for-the-reload-test",
    "HYBRIDINFERENCE_ADMIN_TOKEN": ADMIN,
    "HYBRIDINFERENCE_KEY_SECRET": "key-secret-for-the-reload-test",
}
CONVERGE = 5.0  # seconds: the acceptance bound


@dataclass
class Served:
    url: str
    path: Path
    config: dict[str, Any]
    log: Path
    process: subprocess.Popen[bytes]

    def write(self, config: dict[str, Any]) -> str:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config))
        tmp.replace(self.path)
        return config_version(load_config(self.path, ENV))


@pytest.fixture
def served(tmp_path: Path, upstream_url: str) -> Iterator[Served]:
    config = {
        "auth": {"required": False},
        "storage": {"url": f"sqlite:///{tmp_path}/gw.db", "flush_interval": 0.05},
        "dashboard": {"enabled": False},
        "reload": {"interval": 0.2},
        "providers": {
            "fake": {"kind": "openai", "base_url": upstream_url, "api_key_env": "FAKE_KEY"}
        },
        "models": [
            {"name": "ok", "routes": [{"provider": "fake", "model": "ok"}]},
            {"name": "drip", "routes": [{"provider": "fake", "model": "drip-20-reload"}]},
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    log = tmp_path / "gateway.log"
    env = {**ENV, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    command = [sys.executable, "-m", "hybridinference", "serve", "--config", str(path)]
    command += ["--port", str(port), "--workers", "2"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_serving(url, process, log)
    try:
        yield Served(url, path, config, log, process)
    finally:
        stop(process)


@dataclass
class Load:
    """Client threads sending requests (a new connection each, so both workers serve)."""

    url: str
    stop: threading.Event = field(default_factory=threading.Event)
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def one(self, streamed: bool) -> None:
        body = {
            "model": "drip" if streamed else "ok",
            "messages": [{"role": "user", "content": "hi"}],
        }
        with httpx.Client(timeout=20) as client:
            if not streamed:
                response = client.post(self.url + "/v1/chat/completions", json=body)
                good = response.status_code == 200 and "fake upstream" in response.text
                self.count(good, f"{response.status_code} {response.text[:200]}")
                return
            with client.stream(
                "POST", self.url + "/v1/chat/completions", json={**body, "stream": True}
            ) as response:
                lines = [line for line in response.iter_lines() if line]
            good = response.status_code == 200 and lines[-1:] == ["data: [DONE]"]
            self.count(good, f"stream {response.status_code} {lines[-3:]}")

    def count(self, good: bool, detail: str) -> None:
        with self.lock:
            if good:
                self.ok += 1
            else:
                self.failures.append(detail)

    def run(self, streamed: bool) -> None:
        while not self.stop.is_set():
            try:
                self.one(streamed)
            except httpx.HTTPError as exc:
                self.count(False, repr(exc))


def versions_in_metrics(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return {
        sample.labels["version"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "hybridinference_config_info"
    }


def processes_on(url: str, version: str, tries: int = 40) -> set[int]:
    """Worker pids seen answering /admin/config with ``version`` (fresh connections)."""
    seen: dict[int, str] = {}
    for _ in range(tries):
        with httpx.Client(timeout=10) as client:
            body = client.get(url + "/admin/config", headers=HEADERS).json()
        seen[body["pid"]] = body["version"]
    return {pid for pid, v in seen.items() if v == version}


def test_file_change_under_load_converges_with_zero_failures(served: Served) -> None:
    old = config_version(load_config(served.path, ENV))
    load = Load(served.url)
    threads = [threading.Thread(target=load.run, args=(i % 2 == 1,)) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        changed = {**served.config, "models": [*served.config["models"]]}
        changed["models"].append({"name": "added", "routes": [{"provider": "fake", "model": "ok"}]})
        new = served.write(changed)
        started = time.monotonic()
        while versions_in_metrics(served.url).get(new) != 2.0:
            assert time.monotonic() - started < CONVERGE, versions_in_metrics(served.url)
            time.sleep(0.1)
        converged = time.monotonic() - started
        assert versions_in_metrics(served.url).get(old) == 0.0
        assert len(processes_on(served.url, new)) == 2
        # an invalid edit: refused by every process, with a message naming the problem
        broken = {**changed, "routing": {"max_attempts": 0}}
        tmp = served.path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(broken))
        tmp.replace(served.path)
        response = httpx.post(served.url + "/admin/config/reload", headers=HEADERS, timeout=20)
        assert response.status_code == 400
        message = response.json()["error"]["message"]
        assert "routing.max_attempts" in message and "greater than or equal to 1" in message
        time.sleep(1.0)  # both watchers have seen the broken file
        with httpx.Client(timeout=10) as client:
            state = client.get(served.url + "/admin/config", headers=HEADERS).json()
        assert state["version"] == new and "max_attempts" in state["reloads"]["last_error"]
        assert versions_in_metrics(served.url).get(new) == 2.0
        time.sleep(0.5)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(30)
    assert load.failures == []
    assert load.ok > 20
    assert (
        httpx.post(
            served.url + "/v1/chat/completions",
            json={"model": "added", "messages": [{"role": "user", "content": "hi"}]},
            timeout=20,
        ).status_code
        == 200
    )
    print(f"converged in {converged:.2f} s; {load.ok} requests, 0 failed; pid {os.getpid()}")
    sighup_to_the_supervisor(served)  # same process tree: one start for both checks


def worker_pids(url: str, tries: int = 30, until: set[int] | None = None) -> dict[int, str]:
    """The workers answering (pid → version), sampled over new connections; with ``until``
    it samples longer (the kernel may hand many connections in a row to one worker) and
    stops once it has seen exactly those pids."""
    seen: dict[int, str] = {}
    for _ in range(tries if until is None else 10 * tries):
        try:
            with httpx.Client(timeout=10) as client:
                body = client.get(url + "/admin/config", headers=HEADERS).json()
        except httpx.RemoteProtocolError:  # a worker uvicorn is replacing closed on us
            continue
        seen[body["pid"]] = body["version"]
        if until is not None and set(seen) >= until:
            break
    return seen


def sighup_to_the_supervisor(served: Served) -> None:
    """uvicorn's supervisor answers SIGHUP by replacing the workers one by one; with an
    invalid file the first replacement cannot start and the old workers keep serving."""
    supervisor = served.process
    before = worker_pids(served.url)
    assert len(before) == 2
    tmp = served.path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({**served.config, "routing": {"max_attempts": 0}}))
    tmp.replace(served.path)
    supervisor.send_signal(signal.SIGHUP)
    wait_for_log(served, "aborting the restart")
    assert set(worker_pids(served.url, until=set(before))) == set(before)
    ok = {"model": "ok", "messages": [{"role": "user", "content": "hi"}]}
    assert httpx.post(served.url + "/v1/chat/completions", json=ok, timeout=20).status_code == 200
    new = served.write({**served.config, "routing": {"max_attempts": 2}})
    # uvicorn also aborts a restart whose replacement is not ready within 5 s (a loaded
    # machine): an operator sends SIGHUP again, and so does this test
    for _ in range(4):
        supervisor.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            pids = worker_pids(served.url, 10)
            if pids.keys().isdisjoint(before) and len(pids) == 2:
                assert set(pids.values()) == {new}
                return
            time.sleep(0.5)
    raise AssertionError(f"the workers were not replaced: {worker_pids(served.url)}")


def wait_for_log(served: Served, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in served.log.read_text():
        assert time.monotonic() < deadline, f"{text!r} not logged"
        time.sleep(0.2)
