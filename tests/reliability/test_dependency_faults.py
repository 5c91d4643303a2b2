"""Journal disk full: the request log (SQLite) and its spill journal share a small tmpfs
that the test fills up. The documented policy (docs/storage.md, docs/reliability.md):
serving goes on, a row that can be neither written nor spilled is counted as lost — on
/metrics, never silently — and once space is back, rows are written again.

(PostgreSQL down or slow and Redis down are covered by tests/e2e/test_storage_faults.py
and tests/e2e/test_scaleout.py.)"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import gateway_config
from tests.e2e.helpers import HI, start_gateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs (CI runs as root): {done.stderr}")
        pytest.skip(f"needs root to mount a small tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def metric(gw: RunningGateway, name: str) -> float:
    for line in httpx.get(gw.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(f"hybridinference_{name} ") or line.startswith(
            f"hybridinference_{name}_total "
        ):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not on /metrics")


def chat(gw: RunningGateway, request_id: str) -> int:
    response = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "ok", "messages": HI},
        headers={"X-Request-ID": request_id},
        timeout=10,
    )
    return response.status_code


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass  # ENOSPC: the disk is full
    return filler


def test_journal_disk_full_is_counted_and_serving_goes_on(
    fake_openai: tuple[FakeOpenAIUpstream, RunningAiohttp], small_disk: Path
) -> None:
    config = gateway_config(fake_openai[1].url + "/v1", small_disk)
    config["storage"] = {
        "url": f"sqlite:///{small_disk}/gw.db",
        "flush_interval": 0.05,
        "journal_dir": str(small_disk / "journal"),
    }
    gw = start_gateway(config)
    try:
        assert chat(gw, "before-full") == 200
        assert gw.wait_rows(1, "request_id = ?", ("before-full",))
        filler = fill(small_disk)
        statuses = [chat(gw, f"full-{n}") for n in range(20)]
        assert statuses == [200] * 20  # serving goes on
        deadline = time.monotonic() + 10
        while metric(gw, "log_rows_lost") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        lost = metric(gw, "log_rows_lost")
        assert lost > 0  # counted, not silent
        assert metric(gw, "log_database_up") == 0
        deadline = time.monotonic() + 10  # later batches may still be on their way
        while True:
            lost = metric(gw, "log_rows_lost")
            written = len(gw.rows("request_id LIKE 'full-%'"))
            if written + lost >= 20 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert written + lost >= 20  # every row is either in the table or counted as lost
        filler.unlink()  # space is back
        assert chat(gw, "after-full") == 200
        assert gw.wait_rows(1, "request_id = ?", ("after-full",), timeout=15)
        assert chat(gw, "after-full-2") == 200
        assert gw.wait_rows(1, "request_id = ?", ("after-full-2",), timeout=15)
        assert metric(gw, "log_rows_lost") == lost  # nothing more lost once there is room
    finally:
        gw.stop()
