"""A lean HTTP/1.1 client for the per-request upstream calls.

Keep-alive connections on asyncio protocols, responses parsed by httptools (the parser
uvicorn uses), the request head and body sent in one write, TCP_NODELAY on every
connection, and timeouts as plain timer handles on the one future a reader waits on —
no task, no timeout context, no cookie jar, no per-request session machinery. aiohttp
cost about four times as much CPU per upstream call (docs/performance.md, "Choices");
it stays for the off-path HTTP (engine /metrics scrapes, the dashboard's proxy).

    pool = ConnectionPool("http://127.0.0.1:8000/v1", connect_timeout=5.0)
    response = await pool.request(b"POST", "/chat/completions", headers, body, within=30)
    response.status, response.headers["content-type"]
    data = await response.read(limit, within)         # the whole body
    line = await response.readline(limit, within)     # b"" at the end of the body
    await response.finish(within)  # the rest dropped (after a protocol's last event)
    response.release()  # back to the pool when read to the end, else closed
    response.close()    # closed: the upstream sees the request cancelled

Failures are ``ConnectFailed`` (no connection), ``ConnectionClosed`` (lost mid-way),
``ProtocolError`` (unparseable or oversized) and ``TimeoutError``; the caller maps them
(``adapters.http.map_transport_errors``). A request that finds its reused keep-alive
connection closed by the server before any byte of the answer is sent again once on a
fresh connection (the server's idle timeout raced the request).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import zlib
from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

import httptools

#: a streamed body buffered beyond this pauses reading from the upstream until consumed
HIGH_WATER = 1024 * 1024
#: how long a stream whose last event has arrived waits for the end of the HTTP body
#: (usually in the same packet) before its connection is closed rather than pooled
FINISH_SECONDS = 0.05
KEEPALIVE_SECONDS = 60.0
MAX_IDLE = 512


class ConnectFailed(OSError):
    """No connection could be made; ``reason`` says why in a few words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectionClosed(ConnectionError):
    """The upstream closed the connection before the response was complete."""


class ProtocolError(Exception):
    """The upstream sent something that is not a valid HTTP/1.1 response."""


class BodyTooLarge(ProtocolError):
    """The body (or one line of it) is over the caller's limit."""


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Response:
    """One response: status and headers once ``request`` returns, the body as it comes."""

    __slots__ = (
        "_buffer",
        "_complete",
        "_conn",
        "_decoder",
        "_error",
        "_waiter",
        "_whole",
        "got_bytes",
        "headers",
        "status",
    )

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._buffer = bytearray()
        self._complete = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: zlib._Decompress | None = None
        self._whole = False  # read() wants all of it: never pause
        self.status = 0
        self.headers: dict[str, str] = {}
        self.got_bytes = False

    # -- fed by the connection -------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _body(self, data: bytes) -> None:
        if self._decoder is not None:
            try:
                data = self._decoder.decompress(data)
            except zlib.error:
                self._fail(ProtocolError("undecodable content-encoding"))
                return
        self._buffer += data
        if not self._whole and len(self._buffer) > HIGH_WATER:
            self._conn.pause()
        self._wake()

    def _fail(self, error: BaseException) -> None:
        if self._error is None and not self._complete:
            self._error = error
        self._wake()

    # -- used by the caller --------------------------------------------------------

    @property
    def at_eof(self) -> bool:
        return self._complete and not self._buffer

    async def _wait(self, deadline: float) -> None:
        if self._error is not None:
            raise self._error
        loop = self._conn.loop
        waiter = loop.create_future()
        self._waiter = waiter
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        if self._error is not None:
            raise self._error

    async def _head(self, within: float) -> None:
        deadline = self._conn.loop.time() + within
        while not self.status:
            await self._wait(deadline)

    async def read(self, limit: int, within: float) -> bytes:
        """The whole body; ``BodyTooLarge`` past ``limit`` bytes, ``TimeoutError`` if it
        has not all arrived ``within`` seconds."""
        declared = self.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:  # refused before it fills memory
            raise BodyTooLarge("oversized body")
        self._whole = True
        self._conn.resume()
        deadline = self._conn.loop.time() + within
        while not self._complete:
            if len(self._buffer) > limit:
                raise BodyTooLarge("oversized body")
            await self._wait(deadline)
        if len(self._buffer) > limit:
            raise BodyTooLarge("oversized body")
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    async def readline(self, limit: int, within: float) -> bytes:
        """The next line, its ``\\n`` included (the last may lack it); b"" at the end.
        ``BodyTooLarge`` for a line over ``limit`` bytes; ``TimeoutError`` if no whole
        line arrived ``within`` seconds."""
        buffer = self._buffer
        deadline = 0.0
        while True:
            end = buffer.find(b"\n")
            if end >= limit:  # a whole line over the limit is refused like a partial one
                raise BodyTooLarge("line over the limit")
            if end >= 0:
                line = bytes(buffer[: end + 1])
                del buffer[: end + 1]
                if len(buffer) < HIGH_WATER // 2:
                    self._conn.resume()
                return line
            if len(buffer) > limit:
                raise BodyTooLarge("line over the limit")
            if self._complete:
                line = bytes(buffer)
                buffer.clear()
                return line
            self._conn.resume()
            if not deadline:
                deadline = self._conn.loop.time() + within
            await self._wait(deadline)

    async def finish(self, within: float) -> None:
        """Wait up to ``within`` seconds for the rest of the body, dropping it: a caller
        that has seen its protocol's last event calls this so the connection can go back
        to the pool instead of being closed (a new TLS handshake for the next request)."""
        deadline = self._conn.loop.time() + within
        try:
            while not self._complete:
                self._buffer.clear()
                self._conn.resume()
                await self._wait(deadline)
        except (TimeoutError, ProtocolError, ConnectionError):
            return  # release() closes it
        self._buffer.clear()

    def release(self) -> None:
        """Return the connection to the pool if the whole response has arrived (bytes
        still buffered are dropped), else close it."""
        self._conn.finished(self, reusable=self._complete and self._error is None)

    def close(self) -> None:
        self._conn.finished(self, reusable=False)


class Connection(asyncio.Protocol):
    """One keep-alive connection; at most one response in flight."""

    def __init__(self, pool: ConnectionPool, loop: asyncio.AbstractEventLoop) -> None:
        self.pool = pool
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.closed = False
        self.keep_alive = False
        self.idle_since = 0.0
        self._paused = False
        self._header_name = ""

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None or response._complete:  # bytes nobody asked for: the
            self._abort()  # connection cannot be trusted again
            return
        response.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            response._fail(ProtocolError("malformed response"))
            self._abort()

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, _exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        response = self.response
        if response is None or response._complete:
            return
        if response.status and self._until_close(response):
            response._complete = True  # a body delimited by the end of the connection
            response._wake()
        else:
            response._fail(ConnectionClosed("connection closed before the response ended"))

    def pause_writing(self) -> None:  # a request body larger than the socket buffer:
        pass  # the transport buffers it; bodies are bounded by the gateway's body limit

    # -- httptools callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        response = self.response
        if response is not None and response._complete:  # a second answer to one request
            self.keep_alive = False
            raise ProtocolError("more than one response")

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self.response.headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # an interim answer: the real head follows
            response.headers = {}
            return
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding in ("gzip", "deflate"):
            response._decoder = zlib.decompressobj(47)  # gzip or zlib header, detected
        elif encoding != "identity":
            response._fail(ProtocolError(f"unsupported content-encoding {encoding!r}"))
            self._abort()
            return
        response.status = status
        response._wake()

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response._body(body)

    def on_message_complete(self) -> None:
        response = self.response
        if response is None or not response.status:
            return  # the end of an interim (1xx) message
        self.keep_alive = self.parser.should_keep_alive()
        if response._decoder is not None:
            response._buffer += response._decoder.flush()
        response._complete = True
        response._wake()

    # -- used by the pool and the response ------------------------------------------------

    @staticmethod
    def _until_close(response: Response) -> bool:
        headers = response.headers
        return "content-length" not in headers and "chunked" not in headers.get(
            "transfer-encoding", ""
        )

    def send(self, data: bytes) -> Response:
        assert self.transport is not None
        response = Response(self)
        self.response = response
        self.transport.write(data)
        return response

    def pause(self) -> None:
        if not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        if self._paused and self.transport is not None and not self.closed:
            self._paused = False
            self.transport.resume_reading()

    def finished(self, response: Response, *, reusable: bool) -> None:
        if self.response is not response:
            return
        self.response = None
        if reusable and self.keep_alive and not self.closed and not self._paused:
            self.idle_since = self.loop.time()
            self.pool.park(self)
        else:
            self._abort()

    def _abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()


class ConnectionPool:
    """Keep-alive connections to one origin (scheme, host, port), most recent first."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        keepalive: float = KEEPALIVE_SECONDS,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = url.hostname
        self.port = url.port or (443 if url.scheme == "https" else 80)
        self.prefix = url.path.rstrip("/")
        self._ssl = (ssl_context or ssl.create_default_context()) if url.scheme == "https" else None
        default_port = self.port == (443 if url.scheme == "https" else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._host_line = f"Host: {host if default_port else f'{host}:{self.port}'}\r\n".encode()
        self._connect_timeout = connect_timeout
        self._keepalive = keepalive
        self._idle: list[Connection] = []
        self._all: set[Connection] = set()
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @staticmethod
    def header_block(headers: Mapping[str, str]) -> bytes:
        """Headers rendered once (``Name: value\\r\\n`` each); CR or LF in one is refused."""
        lines = []
        for name, value in headers.items():
            if any(c in f"{name}{value}" for c in "\r\n"):
                raise ValueError(f"header {name!r} contains a line break")
            lines.append(f"{name}: {value}\r\n")
        return "".join(lines).encode("latin-1")

    async def request(
        self, method: bytes, path: str, headers: bytes, body: bytes, within: float
    ) -> Response:
        """Send the request; return once the status line and headers have arrived (``within``
        seconds, connecting included)."""
        if self.closed:
            raise ConnectFailed("client closed")
        loop = self._running_loop()
        deadline = loop.time() + within
        data = b"".join(
            (
                method,
                b" ",
                (self.prefix + path).encode(),
                b" HTTP/1.1\r\n",
                self._host_line,
                headers,
                b"Content-Length: %d\r\n\r\n" % len(body),
                body,
            )
        )
        for attempt in (1, 2):
            conn = self._reuse(loop.time())
            reused = conn is not None
            if conn is None:
                wait = max(0.0, min(self._connect_timeout, deadline - loop.time()))
                conn = await self._connect(loop, wait)
            response = conn.send(data)
            try:
                await response._head(max(0.0, deadline - loop.time()))
            except ConnectionClosed:
                response.close()
                if reused and attempt == 1 and not response.got_bytes:
                    continue  # the server's keep-alive timeout raced us: once more, fresh
                raise
            except BaseException:
                response.close()
                raise
            return response
        raise AssertionError("unreachable")

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        """The loop this pool's connections live on, looked up once (on CPython 3.11 every
        ``get_running_loop()`` is a ``getpid()`` system call); a pool used again after its
        loop closed (tests) binds to the new one."""
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _reuse(self, now: float) -> Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._keepalive:
                return conn
            conn._abort()
        return None

    async def _connect(self, loop: asyncio.AbstractEventLoop, within: float) -> Connection:
        try:
            async with asyncio.timeout(within):
                _, conn = await loop.create_connection(
                    lambda: Connection(self, loop),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
        except TimeoutError:
            raise
        except socket.gaierror as exc:
            raise ConnectFailed("DNS lookup failed") from exc
        except ssl.SSLError as exc:
            raise ConnectFailed("TLS error") from exc
        except ConnectionRefusedError as exc:
            raise ConnectFailed("connection refused") from exc
        except OSError as exc:
            raise ConnectFailed(type(exc).__name__) from exc
        self._all.add(conn)
        return conn

    def park(self, conn: Connection) -> None:
        if len(self._idle) >= MAX_IDLE:
            conn._abort()
            return
        self._idle.append(conn)

    def forget(self, conn: Connection) -> None:
        self._all.discard(conn)

    @property
    def open_connections(self) -> int:
        return len(self._all)

    @property
    def idle_connections(self) -> int:
        """Open connections parked for reuse (no request on them)."""
        return sum(1 for conn in self._idle if not conn.closed)

    async def aclose(self) -> None:
        self.closed = True
        self._idle.clear()
        for conn in list(self._all):
            conn._abort()
        self._all.clear()
        await asyncio.sleep(0)  # let the transports finish closing
