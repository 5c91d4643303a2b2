"""The whole benchmark from one command (``make bench``): mock upstream, gateway, nginx and
LiteLLM side by side on one machine, rounds interleaved (A B C D A B C D ...), medians with
min–max. Prints the markdown tables of docs/performance.md and saves them (and the raw
numbers) under bench/results/.

    python bench/run.py              # the recorded run (about 12 minutes)
    python bench/run.py --quick      # one short round of everything (about 2 minutes)
    python bench/run.py --long       # also RSS after 1,000,000 requests
    python bench/run.py --profile    # also a py-spy profile of the gateway under load
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report
import scenarios
import targets
from scenarios import Layout
from targets import ROOT, Proc

RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
#: the scenarios that compare targets side by side (memory and workers: the gateway alone)
COMPARISONS = {"saturation", "rate200", "rate1000", "stream"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 round, short runs")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=None, help="per measurement")
    parser.add_argument("--long", action="store_true", help="memory up to 1M requests")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--no-nginx", action="store_true")
    parser.add_argument(
        "--no-floor", action="store_true", help="leave out bench/floor.py (uvicorn + client)"
    )
    parser.add_argument(
        "--no-durable",
        action="store_true",
        help="leave out the gateway that logs to PostgreSQL and limits keys through Redis",
    )
    parser.add_argument(
        "--only", nargs="*", default=None, help="saturation rate200 rate1000 stream memory workers"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway under wrk")
    parser.add_argument("--update-doc", action="store_true", help="rewrite the doc's tables")
    args = parser.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 5)
    args.seconds = args.seconds or (3.0 if args.quick else 8.0)
    args.durable = durable_name(args)
    return args


def durable_name(args: argparse.Namespace) -> str | None:
    """This run's PostgreSQL schema and Redis key prefix for the durable variant (the
    schema is dropped at the end), or None when the run has no such variant."""
    if args.no_durable or not COMPARISONS & set(args.only or COMPARISONS):
        return None
    if not targets.durable_services_up():
        print("PostgreSQL or Redis is not running: the durable variant is left out")
        return None
    return f"bench_{secrets.token_hex(4)}"


def start_all(
    args: argparse.Namespace, workdir: Path, layout: Layout, procs: dict[str, Proc]
) -> None:
    """Start every target into ``procs`` (so a failure still stops what did start)."""
    mock = procs["direct"] = targets.start_mock(layout.load, workdir)
    config = targets.gateway_config(workdir, mock.port, targets.free_port())
    gateway = procs["gateway"] = targets.start_gateway(config, layout.server, 1, workdir, "gateway")
    gateway.key = targets.create_key(gateway)
    if args.durable is not None:
        config = targets.gateway_config(workdir, mock.port, targets.free_port(), args.durable)
        durable = targets.start_gateway(config, layout.server, 1, workdir, "gateway-durable")
        procs["durable"] = durable
        durable.key = targets.create_key(durable)
    if not args.no_nginx:
        procs["nginx"] = targets.start_nginx(mock.port, layout.server, workdir)
    if not args.no_floor:
        procs["floor"] = targets.start_floor(mock.port, layout.server, workdir)
    if not args.no_litellm:
        if not targets.LITELLM.exists():
            subprocess.run(["bash", str(ROOT / "bench" / "setup_litellm.sh")], check=True)
        procs["litellm"] = targets.start_litellm(mock.port, layout.server, workdir)


def interleave(
    rounds: int, procs: dict[str, Proc], measure: Callable[[Proc], dict[str, float]]
) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {name: [] for name in procs}
    for _ in range(rounds):
        for name, proc in procs.items():
            out[name].append(measure(proc))
            settle(proc)
    return out


def settle(proc: Proc, limit: float = 180.0) -> None:
    """Wait until ``proc`` and then the whole machine are idle: a proxy that fell behind
    (LiteLLM at 200/s builds a backlog of minutes) may still be working through it, and
    anything else busy would steal CPU from the next target measured."""
    until = time.monotonic() + limit
    while time.monotonic() < until:
        before = proc.cpu_seconds()
        time.sleep(0.5)
        if proc.cpu_seconds() - before < 0.05:
            break
    while time.monotonic() < until and machine_busy(0.5) > 0.15:
        pass


def machine_busy(seconds: float) -> float:
    """Cores' worth of CPU the whole machine used over ``seconds`` (from /proc/stat)."""

    def busy_idle() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, idle

    busy0, idle0 = busy_idle()
    time.sleep(seconds)
    busy1, idle1 = busy_idle()
    total = (busy1 - busy0) + (idle1 - idle0)
    return (os.cpu_count() or 1) * (busy1 - busy0) / total if total else 0.0


def run_comparisons(
    args: argparse.Namespace, procs: dict[str, Proc], workdir: Path, layout: Layout
) -> report.Results:
    wanted = set(args.only or COMPARISONS)
    results: report.Results = {}
    secs = args.seconds
    if "saturation" in wanted:
        print("saturation (wrk, 64 connections) ...", flush=True)
        interleave(1, procs, lambda p: scenarios.wrk(p, workdir, 2, layout))  # warm-up
        results["saturation"] = interleave(
            args.rounds, procs, lambda p: scenarios.wrk(p, workdir, secs, layout)
        )
    for rate in (200, 1000):
        if f"rate{rate}" in wanted:
            print(f"fixed rate {rate}/s, upstream 50 ms ...", flush=True)
            # LiteLLM (1 worker) falls far behind 200/s already; at 1,000/s its backlog
            # would only steal CPU from the next target, so it sits that one out.
            chosen = {n: p for n, p in procs.items() if rate < 1000 or n != "litellm"}
            results[f"rate{rate}"] = interleave(
                args.rounds, chosen, lambda p, r=rate: scenarios.fixed_rate(p, r, secs, layout)
            )
    if "stream" in wanted:
        print("streaming, 50 streams/s ...", flush=True)
        results["stream"] = interleave(
            args.rounds, procs, lambda p: scenarios.fixed_rate(p, 50, secs, layout, stream=True)
        )
    return results


def run_workers(args: argparse.Namespace, mock: Proc, workdir: Path) -> report.Results:
    """1 vs 2 workers, gateway and wrk both free to use both cores; gateway CPU measured."""
    both = Layout(server="0,1", load="0,1")
    out: report.Results = {"workers": {"1 worker": [], "2 workers": []}}
    for _ in range(args.rounds):
        for workers, label in ((1, "1 worker"), (2, "2 workers")):
            config = targets.gateway_config(workdir, mock.port, targets.free_port())
            gw = targets.start_gateway(config, both.server, workers, workdir, f"gw{workers}")
            try:
                gw.key = targets.create_key(gw)
                targets.wait_ready(
                    gw, scenarios.body("instant").encode(), {"Authorization": f"Bearer {gw.key}"}
                )
                scenarios.wrk(gw, workdir, 2, both)
                cpu = gw.cpu_seconds()
                row = scenarios.wrk(gw, workdir, args.seconds, both)
                row["cores"] = (gw.cpu_seconds() - cpu) / args.seconds
                out["workers"][label].append(row)
            finally:
                gw.stop()
    return out


def run_memory(
    args: argparse.Namespace, mock: Proc, workdir: Path, layout: Layout
) -> dict[str, float]:
    config = targets.gateway_config(workdir, mock.port, targets.free_port())
    gw = targets.start_gateway(config, layout.server, 1, workdir, "gw-memory")
    try:
        gw.key = targets.create_key(gw)
        targets.wait_ready(
            gw, scenarios.body("instant").encode(), {"Authorization": f"Bearer {gw.key}"}
        )
        points = [10_000, 100_000] + ([1_000_000] if args.long else [])
        print(f"memory: driving a fresh gateway to {points[-1]:,} requests ...", flush=True)
        return scenarios.memory_run(gw, workdir, points, layout)
    finally:
        gw.stop()


def profile(gateway: Proc, workdir: Path, layout: Layout, seconds: float) -> Path:
    """py-spy (native off, idle off) on the gateway while wrk saturates it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "profile.txt"
    raw = RESULTS / "profile.raw"
    spy = subprocess.Popen(
        [
            str(targets.BIN / "py-spy"),
            "record",
            "--pid",
            str(gateway.popen.pid),
            "--format",
            "raw",
            "--output",
            str(raw),
            "--duration",
            str(int(seconds)),
            "--rate",
            "500",
            "--gil",
            *(["--native"] if __import__("os").environ.get("SPY_NATIVE") else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1)
    scenarios.wrk(gateway, workdir, seconds - 1, layout)
    spy.wait(timeout=60)
    out.write_text(
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "profile_summary.py"), str(raw)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    return out


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "?",
    )
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} × {cpu}; Linux {platform.release()}; Python "
        f"{platform.python_version()}; load average at start {load[0]:.2f}"
    )


def render(
    args: argparse.Namespace, results: report.Results, memory: dict[str, float], started: str
) -> str:
    sections = [
        f"Run {started}: {machine()}; {args.rounds} interleaved round(s) of {args.seconds:g} s; "
        "gateway, nginx, the floor and LiteLLM pinned to CPU 0, load generator and mock to CPU 1.",
        "",
        "Saturation (non-streaming, instant upstream, wrk 64 connections):",
        "",
        *report.saturation_table(results),
        "",
        "Fixed rate 200 requests/s (upstream answers in 50 ms):",
        "",
        *report.latency_table(results, "rate200"),
        "",
        "Fixed rate 1,000 requests/s (upstream answers in 50 ms):",
        "",
        *report.latency_table(results, "rate1000"),
        "",
        "Streaming (20 chunks 10 ms apart, 50 streams/s, include_usage):",
        "",
        *report.stream_table(results),
        "",
        "Memory (gateway, 1 worker, fresh process, wrk saturation):",
        "",
        *report.memory_table(memory),
        "",
        "Workers (gateway and wrk share both cores):",
        "",
        *report.workers_table(results),
        "",
        "Targets:",
        "",
        *report.checks_table(results, memory),
    ]
    return "\n".join(sections) + "\n"


def update_doc(table: str) -> None:
    text = DOC.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{table}{END}{tail}")


def main() -> None:
    args = parse_args()
    layout = Layout()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    workdir = Path(tempfile.mkdtemp(prefix="hybridinference-bench-"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    wanted = set(args.only or COMPARISONS | {"memory", "workers"})
    procs: dict[str, Proc] = {}
    memory: dict[str, float] = {}
    try:
        start_all(args, workdir, layout, procs)
        procs = {n: procs[n] for n in report.LABELS if n in procs}  # the tables' order
        for proc in procs.values():
            targets.wait_ready(
                proc, scenarios.body("instant").encode(), {"Authorization": f"Bearer {proc.key}"}
            )
        results = run_comparisons(args, procs, workdir, layout)
        (RESULTS / "partial.json").write_text(json.dumps({"results": results}, indent=1))
        if args.profile:
            print(f"profile written to {profile(procs['gateway'], workdir, layout, 15)}")
        for name in [n for n in procs if n != "direct"]:  # the mock serves what follows
            procs.pop(name).stop()
        if "memory" in wanted:
            memory = run_memory(args, procs["direct"], workdir, layout)
        if "workers" in wanted:
            print("workers: 1 vs 2 ...", flush=True)
            results.update(run_workers(args, procs["direct"], workdir))
    except BaseException:
        print(f"failed; logs are in {workdir}", file=sys.stderr)
        raise
    finally:
        for proc in procs.values():
            proc.stop()
        if args.durable is not None:
            targets.drop_schema(args.durable)
    table = render(args, results, memory, started)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (RESULTS / f"{stamp}.json").write_text(
        json.dumps({"results": results, "memory": memory}, indent=1)
    )
    (RESULTS / "latest.md").write_text(table)
    shutil.rmtree(workdir, ignore_errors=True)
    print(table)
    if args.update_doc:
        update_doc(table)


if __name__ == "__main__":
    main()
