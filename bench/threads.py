"""CPU per thread of one gateway (1 worker) saturated by wrk: how much of a core the event
loop's thread and each background thread (the request log's SQLite writer, above all)
use, in user and system time. The "1 worker" row of the workers table in
docs/performance.md is their sum; the share off the loop's thread is what a second
worker cannot have.

    python bench/threads.py [--seconds 8] [--cpus 0,1]

The gateway and wrk share ``--cpus`` (as in the workers scenario); the mock is on CPU 1.
``BENCH_GATEWAY_SRC`` benchmarks another source tree, as for ``bench/run.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenarios
import targets
from scenarios import Layout

TICK = os.sysconf("SC_CLK_TCK")


def thread_ticks(pids: list[int]) -> dict[int, tuple[int, int]]:
    """(user, system) clock ticks of every thread of ``pids``."""
    found: dict[int, tuple[int, int]] = {}
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                found[int(tid)] = targets.cpu_ticks(Path(f"/proc/{pid}/task/{tid}/stat"))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--cpus", default="0,1", help="the gateway's and wrk's CPUs")
    args = parser.parse_args()
    layout = Layout(server=args.cpus, load=args.cpus)
    workdir = Path(tempfile.mkdtemp(prefix="hybridinference-threads-"))
    mock = targets.start_mock("1", workdir)
    gateway = None
    try:
        config = targets.gateway_config(workdir, mock.port, targets.free_port())
        gateway = targets.start_gateway(config, layout.server, 1, workdir, "gateway")
        gateway.key = targets.create_key(gateway)
        scenarios.wrk(gateway, workdir, 2, layout)  # warm-up
        pids = gateway.pids()
        before, started = thread_ticks(pids), time.monotonic()
        result = scenarios.wrk(gateway, workdir, args.seconds, layout)
        after, elapsed = thread_ticks(pids), time.monotonic() - started
    finally:
        if gateway is not None:
            gateway.stop()
        mock.stop()
    main_thread = min(after)  # the process's first thread runs the event loop
    print(f"{result['rps']:.0f} requests/s; cores used per thread (user + system):")
    total = 0.0
    for tid, (user, system) in sorted(after.items()):
        old_user, old_system = before.get(tid, (0, 0))
        user_cores = (user - old_user) / TICK / elapsed
        system_cores = (system - old_system) / TICK / elapsed
        cores = user_cores + system_cores
        total += cores
        if cores >= 0.005:
            name = "event loop" if tid == main_thread else f"thread {tid}"
            print(f"  {name:<14} {cores:.3f} ({user_cores:.3f} + {system_cores:.3f})")
    print(f"  {'all':<14} {total:.3f}")


if __name__ == "__main__":
    main()
