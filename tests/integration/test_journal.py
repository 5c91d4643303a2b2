"""The spill journal and the log writer's fallback to it, on real files and a real
PostgreSQL made unreachable by cutting a TCP proxy in front of it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from hybridinference.schemas.records import RequestRecord
from hybridinference.storage import open_store
from hybridinference.storage.journal import Journal
from hybridinference.storage.redaction import Redactor
from hybridinference.storage.rows import request_to_json
from hybridinference.storage.writer import LogWriter
from tests.fakes.postgres import PG_HOST, PG_PORT, fetch, postgres_schema, schema_url
from tests.fakes.tcp_proxy import TcpProxy
from tests.integration.test_storage import record


def listing(path: Path) -> list[Path]:
    return list(path.iterdir())


async def drain(journal: Journal) -> list[RequestRecord]:
    out: list[RequestRecord] = []
    while (batch := await journal.read(3)) is not None:
        out += batch.records
        await journal.commit(batch)
    return out


async def test_journal_keeps_order_and_empties_when_consumed(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    await journal.open()
    await journal.append([record(1), record(2)])
    await journal.append([record(3), record(4)])
    assert journal.pending and journal.pending_bytes > 0
    assert [r.request_id for r in await drain(journal)] == [f"req-{n:04d}" for n in range(1, 5)]
    assert not journal.pending
    await journal.append([record(5)])  # the truncated segment takes new rows
    assert [r.request_id for r in await drain(journal)] == ["req-0005"]
    await journal.aclose()
    assert listing(tmp_path) == []  # an empty own segment is removed on close


async def test_segments_of_a_stopped_process_are_adopted_and_torn_lines_skipped(
    tmp_path: Path,
) -> None:
    first = Journal(tmp_path)
    await first.open()
    await first.append([record(1), record(2)])
    live = Journal(tmp_path)  # `first` still holds its lock: not adopted
    await live.open()
    assert await drain(live) == []
    await first.aclose()  # rows not replayed: the segment stays on disk
    (tmp_path / "journal-00000000000000000001-1.jsonl").write_bytes(
        request_to_json(record(0)) + b"\n" + request_to_json(record(9))[:40]  # torn write
    )
    heir = Journal(tmp_path)
    await heir.open()
    assert [r.request_id for r in await drain(heir)] == ["req-0000", "req-0001", "req-0002"]
    assert heir.corrupt_lines == 1
    await heir.aclose()
    await live.aclose()
    assert listing(tmp_path) == []


@pytest.fixture
def pg_schema() -> Iterator[str]:
    with postgres_schema() as schema:
        yield schema


async def wait_for(condition: object, limit: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_writer_spills_while_postgres_is_unreachable_then_replays_exactly_once(
    tmp_path: Path, pg_schema: str
) -> None:
    proxy = TcpProxy(PG_HOST, PG_PORT)
    store = open_store(schema_url(pg_schema, port=proxy.port))
    await store.migrate()
    journal = Journal(tmp_path / "journal")
    await journal.open()
    writer = LogWriter(
        store, journal, queue_size=1000, batch_size=20, flush_interval=0.02, write_timeout=1.0
    )
    writer.start()
    try:
        for n in range(10):
            writer.submit(record(n))
        await wait_for(lambda: writer.stats.written == 10)
        proxy.cut()
        for n in range(10, 60):
            writer.submit(record(n))
        await wait_for(lambda: writer.stats.journaled == 50)
        assert not writer.database_up and writer.stats.failed_batches >= 1
        assert writer.journal_pending_bytes > 0
        proxy.restore()
        for n in range(60, 70):
            writer.submit(record(n))
        await wait_for(lambda: writer.stats.written == 70 and not journal.pending)
        # a batch in flight when the proxy cut may have been committed before its answer
        # was lost: journaled too, its rows then count as already written on replay
        assert writer.database_up and 0 < writer.stats.replayed <= writer.stats.journaled
    finally:
        await writer.aclose()
        await journal.aclose()
        await store.aclose()
        proxy.stop()
    rows = await fetch(pg_schema, "SELECT request_id FROM requests ORDER BY request_id")
    assert [r["request_id"] for r in rows] == [f"req-{n:04d}" for n in range(70)]


async def test_shutdown_leaves_unwritable_rows_in_the_journal_for_the_next_start(
    tmp_path: Path, pg_schema: str
) -> None:
    proxy = TcpProxy(PG_HOST, PG_PORT)
    url = schema_url(pg_schema, port=proxy.port)
    store = open_store(url)
    await store.migrate()
    proxy.cut()
    journal = Journal(tmp_path)
    await journal.open()
    writer = LogWriter(store, journal, queue_size=100, batch_size=50, flush_interval=0.02)
    writer.start()
    for n in range(5):
        writer.submit(record(n))
    await writer.aclose()  # drains the queue into the journal; the database is still away
    await journal.aclose()
    await store.aclose()
    assert writer.stats.journaled == 5 and writer.stats.written == 0
    proxy.restore()
    store, journal = open_store(url), Journal(tmp_path)
    await journal.open()
    writer = LogWriter(store, journal, queue_size=100, batch_size=50, flush_interval=0.02)
    writer.start()
    await writer.aclose()  # nothing new: shutdown replays the adopted segment
    await journal.aclose()
    await store.aclose()
    proxy.stop()
    assert writer.stats.replayed == 5
    assert len(await fetch(pg_schema, "SELECT 1 FROM requests")) == 5
    assert listing(tmp_path) == []


async def test_redaction_happens_in_the_writer(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/db.sqlite")
    await store.migrate()
    journal = Journal(tmp_path / "journal")
    await journal.open()
    redactor = Redactor.build(["secrets", "emails"], [r"\bcustomer-\d+\b"])
    writer = LogWriter(
        store, journal, queue_size=10, batch_size=10, flush_interval=0.01, redactor=redactor
    )
    writer.start()
    content = {
        "request": {
            "messages": [
                {"role": "user", "content": "mail bob@example.com, key sk-abcdefghijklmnop1234"},
                {"role": "user", "content": "password=hunter22 for customer-42"},
            ]
        }
    }
    writer.submit(record(1, content=orjson.dumps(content).decode()))
    await writer.aclose()
    stored = orjson.loads((await store.recent_requests(1))[0].content or "")
    texts = [m["content"] for m in stored["request"]["messages"]]
    assert texts == [
        "mail [REDACTED:emails], key [REDACTED:secrets]",
        "[REDACTED:secrets] for [REDACTED:custom1]",
    ]
    await journal.aclose()
    await store.aclose()


def test_a_journal_that_cannot_be_written_is_counted_never_silent(tmp_path: Path) -> None:
    """A child process whose file size limit is 0 (SIGXFSZ ignored: writes fail with
    EFBIG) and whose database is unreachable: the rows are counted as lost."""
    script = textwrap.dedent(
        f"""
        import asyncio, json, resource, signal, sys
        sys.path.insert(0, {str(Path.cwd())!r})
        from pathlib import Path
        from hybridinference.storage import open_store
        from hybridinference.storage.journal import Journal
        from hybridinference.storage.writer import LogWriter
        from tests.integration.test_storage import record

        async def main():
            store = open_store("postgresql://postgres@127.0.0.1:1/test")
            journal = Journal(Path({str(tmp_path)!r}))
            await journal.open()
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, resource.RLIM_INFINITY))
            writer = LogWriter(store, journal, queue_size=10, batch_size=10,
                               flush_interval=0.01, write_timeout=2)
            writer.start()
            for n in range(3):
                writer.submit(record(n))
            await writer.aclose()
            print(json.dumps({{"lost": writer.stats.lost,
                               "failures": writer.stats.journal_failures,
                               "journaled": writer.stats.journaled}}))

        asyncio.run(main())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path.cwd() / "src")},
    )
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout.strip().splitlines()[-1]) == {
        "lost": 3,
        "failures": 1,
        "journaled": 0,
    }
    assert "database and journal both failed" in done.stderr


async def test_a_row_the_database_refuses_is_counted_and_never_blocks_the_rest(
    tmp_path: Path, pg_schema: str
) -> None:
    store = open_store(schema_url(pg_schema))
    await store.migrate()
    journal = Journal(tmp_path)
    await journal.open()
    writer = LogWriter(store, journal, queue_size=100, batch_size=10, flush_interval=0.05)
    writer.start()
    for n in range(4):
        writer.submit(record(n, status=2**40 if n == 2 else 200))  # out of INTEGER range
    await writer.aclose()
    await journal.aclose()
    await store.aclose()
    assert (writer.stats.written, writer.stats.rejected, writer.stats.journaled) == (3, 1, 0)
    assert writer.database_up
    rows = await fetch(pg_schema, "SELECT request_id FROM requests ORDER BY request_id")
    assert [r["request_id"] for r in rows] == ["req-0000", "req-0001", "req-0003"]
