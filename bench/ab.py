"""A/B two gateway source trees (each a ``src`` folder, e.g. unpacked with ``git archive``)
against one mock: both gateways run at once, pinned to the same CPU, and the load
alternates between them (A B A B ...). Reports gateway CPU per request (robust on a busy
machine), latency added over the mock at a fixed rate, and saturation with wrk.

    python bench/ab.py /tmp/before/src /tmp/after/src --rounds 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenarios
import targets
from scenarios import Layout
from targets import Proc


def start(src: str, mock: Proc, workdir: Path, name: str) -> Proc:
    os.environ["BENCH_GATEWAY_SRC"] = src
    config = targets.gateway_config(workdir / name, mock.port, targets.free_port())
    gateway = targets.start_gateway(config, "0", 1, workdir, name)
    gateway.key = targets.create_key(gateway)
    return gateway


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    layout = Layout()
    workdir = Path(tempfile.mkdtemp(prefix="hybridinference-ab-"))
    for name in ("A", "B"):
        (workdir / name).mkdir()
    procs: list[Proc] = []
    try:
        mock = targets.start_mock(layout.load, workdir)
        procs.append(mock)
        for name, src in (("A", args.a), ("B", args.b)):
            procs.append(start(src, mock, workdir, name))
        rows: dict[str, list[dict[str, float]]] = {"direct": [], "A": [], "B": []}
        for _ in range(args.rounds):
            for name, proc in zip(rows, procs, strict=True):
                row = scenarios.fixed_rate(proc, args.rate, args.seconds, layout)
                if name != "direct":
                    row["rps"] = scenarios.wrk(proc, workdir, args.seconds, layout)["rps"]
                rows[name].append(row)
    finally:
        for proc in procs:
            proc.stop()
    shutil.rmtree(workdir, ignore_errors=True)
    for name in ("A", "B"):
        added = [r["p50"] - d["p50"] for r, d in zip(rows[name], rows["direct"], strict=True)]
        added99 = [r["p99"] - d["p99"] for r, d in zip(rows[name], rows["direct"], strict=True)]
        print(
            f"{name}: CPU µs/request {statistics.median(r['cpu_us'] for r in rows[name]):.0f} "
            f"{sorted(round(r['cpu_us']) for r in rows[name])}; "
            f"added p50 {statistics.median(added):.2f} ms, p99 {statistics.median(added99):.2f} ms "
            f"@ {args.rate:g}/s; wrk {statistics.median(r['rps'] for r in rows[name]):.0f} "
            f"req/s {sorted(round(r['rps']) for r in rows[name])}"
        )


if __name__ == "__main__":
    main()
