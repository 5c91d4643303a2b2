"""One measurement each: saturation with wrk, fixed-rate latency and streaming with
``loadgen.py``, memory after N requests. Load generators are pinned to ``LOAD_CPU``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from targets import MODELS, ROOT, Proc

LOADGEN = ROOT / "bench" / "loadgen.py"
STREAM_GAP_MS = 10.0  # matches MODELS["stream"] (mock-n20-g10)


@dataclass(frozen=True)
class Layout:
    """Which CPUs the gateway (and the proxies compared with it) and the load get."""

    server: str = "0"
    load: str = "1"


def body(kind: str, stream: bool = False) -> str:
    data: dict[str, object] = {
        "model": MODELS[kind],
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 16,
    }
    if stream:
        data["stream"] = True
        data["stream_options"] = {"include_usage": True}
    return json.dumps(data, separators=(",", ":"))


def wrk_script(workdir: Path, key: str) -> Path:
    path = workdir / f"post-{key[-8:]}.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body('instant'))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    return path


def wrk(
    target: Proc, workdir: Path, seconds: float, layout: Layout, connections: int = 64
) -> dict[str, float]:
    """Saturation: requests/s over ``seconds`` with ``connections`` keep-alive connections."""
    script = wrk_script(workdir, target.key)
    argv = [
        "taskset",
        "-c",
        layout.load,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
    ]
    argv += ["--timeout", "10s", "-s", str(script), target.url]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "requests": total,
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": sum(int(n) for n in re.findall(r"\d+", errors.group(1))) if errors else 0,
    }


def fixed_rate(
    target: Proc,
    rate: float,
    seconds: float,
    layout: Layout,
    *,
    stream: bool = False,
    connections: int = 256,
) -> dict[str, float]:
    argv = ["taskset", "-c", layout.load, sys.executable, str(LOADGEN), target.url]
    argv += ["--rate", str(rate), "--duration", str(seconds), "--connections", str(connections)]
    argv += ["--header", f"Authorization: Bearer {target.key}", "--timeout", "15"]
    if stream:
        argv += ["--body", body("stream", stream=True), "--stream", "--gap-ms", str(STREAM_GAP_MS)]
    else:
        argv += ["--body", body("slow")]
    cpu = target.cpu_seconds()
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    result = dict(json.loads(out))
    # CPU the target spent per request (warm-up included in both): robust to a busy machine
    result["cpu_us"] = (target.cpu_seconds() - cpu) * 1e6 / max(1.0, rate * (seconds + 1.0))
    return result


def memory_run(
    target: Proc, workdir: Path, checkpoints: list[int], layout: Layout, step_seconds: float = 10
) -> dict[str, float]:
    """Drive ``target`` with wrk until each checkpoint (requests served) and read its RSS."""
    result: dict[str, float] = {}
    served = 0
    started = time.monotonic()
    for checkpoint in checkpoints:
        while served < checkpoint:
            remaining = checkpoint - served
            rate = served / max(time.monotonic() - started, 1e-9) if served else 3000.0
            seconds = max(1.0, min(step_seconds, remaining / max(rate, 1.0)))
            served += int(wrk(target, workdir, seconds, layout)["requests"])
        time.sleep(1.0)  # let the log writer catch up before reading memory
        rss, peak = target.memory_mb()
        result[f"rss_mb_{checkpoint}"] = rss
        result[f"peak_mb_{checkpoint}"] = peak
        result[f"served_{checkpoint}"] = served
    return result
