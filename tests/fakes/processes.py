"""Gateway processes the tests start themselves (``hybridinference serve`` with several
workers, the CLI's own servers): wait until one answers, stop it cleanly."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx


def wait_serving(
    url: str,
    process: subprocess.Popen[bytes],
    log: Path | None = None,
    path: str = "/health/ready",
    timeout: float = 60.0,
) -> None:
    """Until ``url + path`` answers 200; fails at once if the process exits (with its log)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert process.poll() is None, log.read_text() if log else "the process exited"
        assert time.monotonic() < deadline, f"{url} did not become ready"
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes], grace: float = 30.0) -> None:
    """SIGINT (a graceful shutdown), then a kill if it takes longer than ``grace``."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
