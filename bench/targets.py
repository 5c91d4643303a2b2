"""The processes a benchmark run starts and stops: the mock upstream, the gateway (a real
``hybridinference serve`` subprocess), nginx as a plain reverse proxy, LiteLLM's proxy.

Every process runs in its own session (process group) pinned with ``taskset`` and is
stopped by that group id, so nothing is left running after a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LITELLM = ROOT / "bench" / ".litellm-venv" / "bin" / "litellm"
#: model names are the mock's scripts (see mock_upstream.py); the same on every target
MODELS = {"instant": "mock", "slow": "mock-d50", "stream": "mock-n20-g10"}
KEY_SECRET = "bench-secret-not-for-production"
ADMIN_TOKEN = "bench-admin-token"
LITELLM_MASTER_KEY = "sk-bench-4f1c2a9e7b3d5086"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    key: str = "none"  # the API key clients send (Authorization: Bearer)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    def pids(self) -> list[int]:
        """Every live process of this target's group (uvicorn/nginx workers included)."""
        pgid = self.popen.pid
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError):
                    stat = Path(f"/proc/{entry}/stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                        found.append(int(entry))
        return found

    def memory_mb(self) -> tuple[float, float]:
        """(current RSS, peak RSS) in MB, summed over the group."""
        rss = hwm = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
        return rss / 1024, hwm / 1024

    def cpu_seconds(self) -> float:
        ticks = 0
        for pid in self.pids():
            with contextlib.suppress(OSError, IndexError):
                ticks += sum(cpu_ticks(Path(f"/proc/{pid}/stat")))
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        for pid in self.pids():  # workers that outlived their parent
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def cpu_ticks(stat: Path) -> tuple[int, int]:
    """(user, system) clock ticks from a process's or thread's ``/proc/.../stat``."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def spawn(
    name: str,
    argv: list[str],
    cpus: str,
    port: int,
    workdir: Path,
    env: dict[str, str] | None = None,
) -> Proc:
    log = (workdir / f"{name}.log").open("wb")
    popen = subprocess.Popen(
        ["taskset", "-c", cpus, *argv],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**os.environ, **(env or {})},
        cwd=workdir,
    )
    return Proc(name, popen, port)


def wait_ready(proc: Proc, body: bytes, headers: dict[str, str], timeout: float = 60.0) -> None:
    """Until a chat completion through ``proc`` answers 200."""
    until = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < until:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}); see its log")
        request = urllib.request.Request(
            proc.url, data=body, headers={"Content-Type": "application/json", **headers}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} not ready after {timeout:.0f}s: {last}")


def start_mock(cpus: str, workdir: Path) -> Proc:
    port = free_port()
    argv = [sys.executable, str(ROOT / "bench" / "mock_upstream.py"), "--port", str(port)]
    return spawn("mock", argv, cpus, port, workdir)


def config_sections() -> list[str]:
    """Top-level config sections the gateway under test knows (its schema forbids others)."""
    env = {**os.environ}
    if os.environ.get("BENCH_GATEWAY_SRC"):
        env["PYTHONPATH"] = os.environ["BENCH_GATEWAY_SRC"]
    code = "from hybridinference.config.schema import GatewayConfig as G; print(*G.model_fields)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    return out.stdout.split()


#: the durable variant's services: the machine's PostgreSQL (trust auth, database ``test``)
#: and Redis, as the test suite uses them
PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
#: limits high enough never to refuse, so that every request runs the Redis check
DURABLE_LIMITS = "{rpm: 1000000000, tpm: 1000000000000, concurrency: 1000000}"


def gateway_config(workdir: Path, mock_port: int, port: int, durable: str | None = None) -> Path:
    """1 worker's config: auth on, request log on (SQLite), metrics on when the gateway has
    them, the dashboard (its own port, not under test) off. With ``durable`` (a name for
    this run's PostgreSQL schema and Redis key prefix): the request log in PostgreSQL and
    every key limited through Redis instead."""
    models = "\n".join(
        f"  - name: {m}\n    routes: [{{provider: mock, model: {m}, "
        "pricing: {input: 0.5, output: 1.5}}]"
        for m in MODELS.values()
    )
    extra = "dashboard: {enabled: false}\n" if "dashboard" in config_sections() else ""
    storage = f"sqlite:///{workdir}/gateway.db"
    if durable is not None:
        storage = f"{PG_DSN}?schema={durable}"
        extra += (
            f"limits: {{backend: redis, redis: {{url: {REDIS_URL!r}, prefix: {durable}}}, "
            f"default_key: {DURABLE_LIMITS}}}\n"
        )
    path = workdir / ("gateway.yaml" if durable is None else f"gateway-{durable}.yaml")
    path.write_text(
        extra
        + f"""server: {{host: 127.0.0.1, port: {port}}}
auth: {{required: true}}
storage: {{url: "{storage}"}}
timeouts: {{connect: 5, first_byte: 30, idle: 30, total: 60}}
providers:
  mock: {{kind: openai, location: local, base_url: "http://127.0.0.1:{mock_port}/v1"}}
models:
{models}
"""
    )
    return path


def durable_services_up() -> bool:
    """PostgreSQL and Redis both accept connections (the durable variant needs them)."""
    for url in (PG_DSN, REDIS_URL):
        parts = urllib.parse.urlsplit(url)
        try:
            socket.create_connection((parts.hostname, parts.port), timeout=2).close()
        except OSError:
            return False
    return True


def drop_schema(schema: str) -> None:
    """Remove a durable run's PostgreSQL schema and the request rows in it."""

    async def drop() -> None:
        conn = await asyncpg.connect(PG_DSN)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop())


def config_port(config: Path) -> int:
    found = re.search(r"server: \{host: [^,]+, port: (\d+)\}", config.read_text())
    assert found is not None
    return int(found[1])


def gateway_env() -> dict[str, str]:
    """The gateway's environment; ``BENCH_GATEWAY_SRC`` (a ``src`` folder, e.g. of another
    commit unpacked with ``git archive``) overrides the installed package."""
    env = {"HYBRIDINFERENCE_KEY_SECRET": KEY_SECRET, "HYBRIDINFERENCE_ADMIN_TOKEN": ADMIN_TOKEN}
    if os.environ.get("BENCH_GATEWAY_SRC"):
        env["PYTHONPATH"] = os.environ["BENCH_GATEWAY_SRC"]
    return env


def start_gateway(config: Path, cpus: str, workers: int, workdir: Path, name: str) -> Proc:
    """A real ``hybridinference serve`` process."""
    argv = [sys.executable, "-m", "hybridinference", "serve", "--config", str(config)]
    argv += ["--workers", str(workers), "--log-level", "warning"]
    return spawn(name, argv, cpus, config_port(config), workdir, gateway_env())


def create_key(gateway: Proc, timeout: float = 60.0) -> str:
    """Wait for the gateway's /health, then issue an API key through the admin API."""
    base = f"http://127.0.0.1:{gateway.port}"
    until = time.monotonic() + timeout
    while True:
        if gateway.popen.poll() is not None:
            raise RuntimeError(f"{gateway.name} exited ({gateway.popen.returncode}); see its log")
        try:
            with urllib.request.urlopen(base + "/health", timeout=5):
                break
        except OSError:
            if time.monotonic() > until:
                raise
            time.sleep(0.2)
    request = urllib.request.Request(
        base + "/admin/keys",
        data=b'{"name":"bench"}',
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["key"])


def start_nginx(mock_port: int, cpus: str, workdir: Path) -> Proc:
    port = free_port()
    root = workdir / "nginx"
    root.mkdir(exist_ok=True)
    root.chmod(0o755)
    conf = root / "nginx.conf"
    temps = " ".join(
        f"{kind}_temp_path {root}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi")
    )
    conf.write_text(
        f"""worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  {temps} scgi_temp_path {root}/scgi;
  upstream mock {{ server 127.0.0.1:{mock_port}; keepalive 512; }}
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      tcp_nodelay on;
    }}
  }}
}}
"""
    )
    return spawn("nginx", ["nginx", "-p", str(root), "-c", str(conf)], cpus, port, workdir)


def start_floor(mock_port: int, cpus: str, workdir: Path) -> Proc:
    """``bench/floor.py``: uvicorn and the gateway's HTTP client, none of the gateway."""
    port = free_port()
    script = Path(__file__).resolve().parent / "floor.py"
    argv = [sys.executable, str(script), "--port", str(port)]
    argv += ["--upstream", f"http://127.0.0.1:{mock_port}/v1"]
    return spawn("floor", argv, cpus, port, workdir, gateway_env())


def start_litellm(mock_port: int, cpus: str, workdir: Path) -> Proc:
    port = free_port()
    models = "\n".join(
        f"  - model_name: {m}\n    litellm_params: {{model: openai/{m}, "
        f'api_base: "http://127.0.0.1:{mock_port}/v1", api_key: dummy}}'
        for m in MODELS.values()
    )
    conf = workdir / "litellm.yaml"
    conf.write_text(
        f"model_list:\n{models}\nlitellm_settings:\n  telemetry: false\n"
        f"general_settings:\n  master_key: {LITELLM_MASTER_KEY}\n"
    )
    argv = [str(LITELLM), "--config", str(conf), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--num_workers", "1"]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    proc = spawn("litellm", argv, cpus, port, workdir, env)
    proc.key = LITELLM_MASTER_KEY
    return proc
