"""``logs export``: request rows of a time range as CSV or JSON Lines.

Formats are a registry (name → writer). Rows stream from the store in batches, oldest
first, so an export of any size runs in constant memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Mapping
from typing import IO

from hybridinference.storage.base import Store
from hybridinference.storage.rows import REQUEST_FIELDS, request_row, request_to_json

Exporter = Callable[[Store, float, float, IO[bytes]], Awaitable[int]]


async def export_jsonl(store: Store, start: float, end: float, out: IO[bytes]) -> int:
    count = 0
    async for record in store.export_requests(start, end):
        out.write(request_to_json(record) + b"\n")
        count += 1
    return count


async def export_csv(store: Store, start: float, end: float, out: IO[bytes]) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(REQUEST_FIELDS)
    count = 0
    async for record in store.export_requests(start, end):
        writer.writerow(request_row(record))
        count += 1
    text.flush()
    text.detach()
    return count


FORMATS: Mapping[str, Exporter] = {"jsonl": export_jsonl, "csv": export_csv}
