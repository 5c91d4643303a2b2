"""The Python floor: the smallest proxy built from the gateway's own server stack (uvicorn
on uvloop with httptools) and its upstream client (``adapters.h1``), with none of the
gateway — no auth, validation, routing, limits, log or metrics. What it adds over the mock
called directly is what any gateway on these parts pays before doing anything; what the
gateway adds over it is the cost of its features (docs/performance.md).

    python bench/floor.py --port 8001 --upstream http://127.0.0.1:9000/v1

A JSON answer gets its ``model`` put back (parsed and re-encoded, as the gateway does); a
stream is relayed line by line as it arrives.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
import uvicorn

from hybridinference.adapters.h1 import ConnectionPool

HEADERS = b"Content-Type: application/json\r\n"
LIMIT = 64 * 1024 * 1024
TIMEOUT = 60.0
JSON_HEAD = [(b"content-type", b"application/json")]
SSE_HEAD = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class Floor:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.pool: ConnectionPool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        if self.pool is None:
            self.pool = ConnectionPool(self.upstream, connect_timeout=5)
        body = orjson.loads(b"".join(chunks))
        response = await self.pool.request(
            b"POST", "/chat/completions", HEADERS, orjson.dumps(body), TIMEOUT
        )
        try:
            if body.get("stream"):
                await send({"type": "http.response.start", "status": 200, "headers": SSE_HEAD})
                while line := await response.readline(LIMIT, TIMEOUT):
                    await send({"type": "http.response.body", "body": line, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                return
            answer = orjson.loads(await response.read(LIMIT, TIMEOUT))
        finally:
            response.release()
        answer["model"] = body["model"]
        data = orjson.dumps(answer)
        head = [*JSON_HEAD, (b"content-length", b"%d" % len(data))]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": data})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    uvicorn.run(
        Floor(args.upstream),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )


if __name__ == "__main__":
    main()
