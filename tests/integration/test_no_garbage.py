"""A served request leaves nothing for the garbage collector: everything it built is freed
by reference counting the moment it is done. A reference cycle per request (an object
that keeps a timer handle or a callback bound to itself, a scope entry that points back
at its holder) would make every request's objects wait for a collection, and the
collections longer (the latency tail, docs/performance.md)."""

from __future__ import annotations

import contextlib
import gc
import http.client
import json
from collections.abc import Iterator

from tests.conftest import GatewayFactory
from tests.fakes.servers import RunningGateway

REQUESTS = 20
#: the modules whose objects a request builds (the server's, the app's, the gateway's)
OWN_MODULES = ("hybridinference", "uvicorn", "starlette", "fastapi")


@contextlib.contextmanager
def collected() -> Iterator[list[object]]:
    """What the collector finds unreachable inside the block (automatic GC held off)."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[object] = []
    try:
        yield found
    finally:
        gc.collect()
        found.extend(gc.garbage)
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()


def _post(gateway: RunningGateway, body: dict[str, object]) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body))
        reply = conn.getresponse()
        assert reply.status == 200
        return reply.read()
    finally:
        conn.close()


def test_requests_leave_no_garbage(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway()
    hello = [{"role": "user", "content": "hi"}]
    _post(gateway, {"model": "ok", "messages": hello})  # first-use caches, pools, imports
    with collected() as garbage:
        for n in range(REQUESTS):
            body: dict[str, object] = {"model": "ok", "messages": hello, "stream": n % 2 == 1}
            assert _post(gateway, body)
    own = [o for o in garbage if type(o).__module__.startswith(OWN_MODULES)]
    assert len(own) < REQUESTS // 2, sorted({type(o).__qualname__ for o in own})
