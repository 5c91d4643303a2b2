"""Open-loop, fixed-rate HTTP/1.1 load generator (uvloop + raw protocol + httptools).

Requests are sent on a fixed schedule whatever the responses do (no coordinated
omission): each goes out on an idle keep-alive connection, or waits for one, in which
case its latency is counted from when it was due. Latency is from the write of the
request to the last byte of the response; for SSE also to the first byte (TTFT), and
every ``data:`` event's arrival time is kept to check that chunks were forwarded as
they came (not buffered) and intact (texts ``t0 t1 ...`` in order, usage, ``[DONE]``).

Prints one JSON object. ``lag_*`` is how late the generator itself sent requests: if
its p99 is small the generator was not the bottleneck.

    python bench/loadgen.py URL --rate 200 --duration 10 --body '{"model":"mock"}'
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import sys
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools
import orjson
import uvloop

now = time.perf_counter


@dataclass(slots=True)
class Result:
    latency: float
    status: int
    ttft: float | None = None
    lateness: list[float] = field(default_factory=list)
    intact: bool = True


class Conn(asyncio.Protocol):
    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.started = 0.0
        self.first: float | None = None
        self.events: list[tuple[float, bytes]] = []
        self.buffer = b""
        self.busy = False  # a request is outstanding on this connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, _exc: Exception | None) -> None:
        self.transport = None
        self.gen.lost(self)

    def send(self, request: bytes, started: float) -> None:
        self.busy = True
        self.started = started
        self.first = None
        self.events = []
        self.buffer = b""
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        t = now()
        if self.first is None:
            self.first = t
        if self.gen.stream:
            self.buffer += body
            while b"\n\n" in self.buffer:
                event, self.buffer = self.buffer.split(b"\n\n", 1)
                self.events.append((t, event))

    def on_message_complete(self) -> None:
        self.busy = False
        t = now()
        result = Result(t - self.started, self.parser.get_status_code())
        if self.gen.stream and self.first is not None:
            result.ttft = self.first - self.started
            result.intact, result.lateness = check_stream(self.events, self.gen.gap)
        self.gen.done(self, result)


def check_stream(events: list[tuple[float, bytes]], gap: float) -> tuple[bool, list[float]]:
    """Every content event ``t<i>`` in order, then usage, then [DONE]; and how late each
    content event arrived against ``first + i * gap``."""
    texts: list[str] = []
    times: list[float] = []
    tail: list[bytes] = []
    for at, raw in events:
        data = raw.removeprefix(b"data: ")
        if data == b"[DONE]":
            tail.append(data)
            continue
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False, []
        if chunk.get("choices"):
            texts.append(chunk["choices"][0]["delta"].get("content", ""))
            times.append(at)
        elif chunk.get("usage"):
            tail.append(b"usage")
    intact = texts == [f"t{i} " for i in range(len(texts))] and tail == [b"usage", b"[DONE]"]
    lateness = [t - (times[0] + i * gap) for i, t in enumerate(times)] if times else []
    return intact and bool(texts), lateness


class Generator:
    def __init__(self, args: argparse.Namespace) -> None:
        url = urlsplit(args.url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 80
        headers = "".join(f"{h}\r\n" for h in args.header)
        body = args.body.encode()
        self.request = (
            f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Content-Type: application/json\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.stream = args.stream
        self.gap = args.gap_ms / 1000
        self.idle: list[Conn] = []
        self.waiting: collections.deque[float] = collections.deque()
        self.results: list[Result] = []
        self.lags: list[float] = []
        self.outstanding = 0
        self.recording = False
        self.errors = 0
        self.idle_event = asyncio.Event()

    async def connect(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(count):
            _, conn = await loop.create_connection(lambda: Conn(self), self.host, self.port)
            self.idle.append(conn)

    def fire(self, due: float) -> None:
        self.outstanding += 1
        t = now()
        if self.recording:
            self.lags.append(t - due)
        if self.idle:
            self.idle.pop().send(self.request, t)
        else:
            self.waiting.append(due)

    def done(self, conn: Conn, result: Result) -> None:
        self.outstanding -= 1
        if not self.outstanding:
            self.idle_event.set()
        if self.recording:
            self.results.append(result)
        if self.waiting:
            conn.send(self.request, self.waiting.popleft())
        else:
            self.idle.append(conn)

    def lost(self, conn: Conn) -> None:
        """A connection closed: an error only with a request outstanding on it (a server
        may close an idle keep-alive connection; the pool just shrinks)."""
        if conn in self.idle:
            self.idle.remove(conn)
        if conn.busy:
            self.errors += 1

    async def run(self, rate: float, duration: float, record: bool) -> None:
        self.recording = record
        total = int(rate * duration)
        start = now() + 0.01
        i = 0
        while i < total:
            t = now()
            due = start + i / rate
            while due <= t and i < total:
                self.fire(due)
                i += 1
                due = start + i / rate
            await asyncio.sleep(max(0.0, due - now()))

    async def drain(self, limit: float) -> int:
        """Wait up to ``limit`` seconds for answers still due; how many never came."""
        if self.outstanding:
            self.idle_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle_event.wait(), limit)
        return self.outstanding


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarise(gen: Generator, timeouts: int, sent: int) -> dict[str, object]:
    ok = [r for r in gen.results if r.status == 200]
    lat = [r.latency * 1000 for r in ok]
    out: dict[str, object] = {
        "sent": sent,
        "ok": len(ok),
        "bad_status": len(gen.results) - len(ok),
        "timeouts": timeouts,
        "conn_errors": gen.errors,
        **{f"p{int(q * 100)}": percentile(lat, q) for q in (0.5, 0.9, 0.99)},
        "max": max(lat, default=float("nan")),
        "lag_p99": percentile([x * 1000 for x in gen.lags], 0.99),
        "lag_max": max((x * 1000 for x in gen.lags), default=float("nan")),
    }
    if gen.stream:
        ttft = [r.ttft * 1000 for r in ok if r.ttft is not None]
        late = [x * 1000 for r in ok for x in r.lateness]
        out.update(
            ttft_p50=percentile(ttft, 0.5),
            ttft_p99=percentile(ttft, 0.99),
            intact=sum(r.intact for r in ok),
            lateness_p50=percentile(late, 0.5),
            lateness_p99=percentile(late, 0.99),
            lateness_max=max(late, default=float("nan")),
        )
    return out


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    gen = Generator(args)
    await gen.connect(args.connections)
    if args.warmup > 0:
        await gen.run(args.rate, args.warmup, record=False)
        await gen.drain(args.timeout)
    gen.errors = 0
    await gen.run(args.rate, args.duration, record=True)
    timeouts = await gen.drain(args.timeout)
    return summarise(gen, timeouts, int(args.rate * args.duration))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--body", default='{"model":"mock","messages":[]}')
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--stream", action="store_true", help="check SSE chunks")
    parser.add_argument("--gap-ms", type=float, default=0.0, help="upstream chunk gap")
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    result = uvloop.run(main_async(args))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
