"""Instructions per request of one or more gateway source trees, counted by valgrind's
callgrind: repeatable to about 1 % whatever else the machine is doing, where CPU time per
request moves by 10-25 % from round to round on a shared machine (docs/performance.md).
It counts user-space instructions only: a change that saves system calls or wake-ups
shows in ``bench/ab.py`` (CPU time, latency), not here.

    python bench/instructions.py /tmp/before/src /tmp/after/src [--requests 200] [--stream]

Each tree's gateway runs under callgrind (the benchmark's config: auth, SQLite request
log, metrics) against the mock upstream; after 30 warm-up requests, ``--requests``
sequential requests over one keep-alive connection are counted, per thread (the event
loop's and the request log writer's), and divided by the number of requests.
"""

from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenarios
import targets

WARMUP = 30
START_TIMEOUT = 900.0  # seconds: start-up under valgrind is ~50x slower


def _totals(out: Path) -> dict[str, int]:
    """Instructions per thread file (``<out>-01`` is the main thread)."""
    totals: dict[str, int] = {}
    for path in sorted(out.parent.glob(out.name + "*")):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                totals[path.name] = max(totals.get(path.name, 0), int(line.split()[1]))
    return {name: count for name, count in totals.items() if count}


def count(src: str, requests: int, stream: bool) -> dict[str, int]:
    workdir = Path(tempfile.mkdtemp(prefix="hybridinference-instructions-"))
    mock = targets.start_mock("0,1", workdir)
    port = targets.free_port()
    config = targets.gateway_config(workdir, mock.port, port)
    out = workdir / "callgrind.out"
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes"]
    argv += [f"--callgrind-out-file={out}", sys.executable, "-m", "hybridinference", "serve"]
    argv += ["--config", str(config), "--log-level", "warning"]
    env = {**targets.gateway_env(), "PYTHONPATH": src}
    gateway = targets.spawn("gateway-callgrind", argv, "0,1", port, workdir, env)
    try:
        key = targets.create_key(gateway, timeout=START_TIMEOUT)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        body = scenarios.body("stream" if stream else "instant", stream).encode()
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

        def send(n: int) -> None:
            for _ in range(n):
                conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
                reply = conn.getresponse()
                reply.read()
                assert reply.status == 200, reply.status

        def control(*flags: str) -> None:
            command = ["callgrind_control", *flags, str(gateway.popen.pid)]
            subprocess.run(command, check=True, capture_output=True)

        send(WARMUP)
        time.sleep(1)
        control("-i", "on")
        send(requests)
        time.sleep(1)  # the request log's batch written, inside the count
        control("-i", "off")
        control("-d")
        time.sleep(2)
        return {name: total // requests for name, total in _totals(out).items()}
    finally:
        gateway.stop()
        mock.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src", nargs="+", help="gateway source trees (src folders)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()
    for src in args.src:
        per_thread = count(src, args.requests, args.stream)
        threads = ", ".join(f"{name}: {n:,}" for name, n in per_thread.items())
        print(f"{src}: {sum(per_thread.values()):,} instructions/request ({threads})")


if __name__ == "__main__":
    main()
