"""Planning register requests: group entries into few reads, never splitting an entry."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .regmap import BIT_TABLES, Entry, LinkSettings, Table

__all__ = ["Request", "plan_reads", "plan_writes"]


@dataclass(frozen=True)
class Request:
    """One read (or write) of `count` registers or bits from `address` in `table`, covering
    `entries`."""

    table: Table
    address: int
    count: int
    entries: tuple[Entry, ...]


def plan_reads(
    entries: Iterable[Entry], settings: LinkSettings, *, max_count: int | None = None
) -> list[Request]:
    """Reads covering `entries`, grouped per table in address order.

    Neighbours (at most `settings.max_gap` unmapped registers apart) share a request up to the
    table's read limit. An entry is never split over two requests, so a multi-register value is
    read in one piece. `max_count` lowers the limit (tests use it to show what splitting does).
    """
    requests: list[Request] = []
    by_table: dict[Table, list[Entry]] = {}
    for entry in {e.name: e for e in entries}.values():
        by_table.setdefault(entry.table, []).append(entry)
    for table, table_entries in by_table.items():
        limit = settings.max_read_bits if table in BIT_TABLES else settings.max_read_registers
        if max_count is not None:
            limit = min(limit, max_count)
        current: list[Entry] = []
        for entry in sorted(table_entries, key=lambda e: (e.address, e.end)):
            if current:
                start = current[0].address
                end = max(e.end for e in current)
                if entry.address - end <= settings.max_gap and max(end, entry.end) - start <= limit:
                    current.append(entry)
                    continue
                requests.append(_request(table, current))
            current = [entry]
            if entry.words > limit and max_count is not None:
                requests.extend(_split(table, entry, limit))
                current = []
        if current:
            requests.append(_request(table, current))
    return requests


def _request(table: Table, entries: list[Entry]) -> Request:
    start = entries[0].address
    end = max(e.end for e in entries)
    return Request(table, start, end - start, tuple(entries))


def _split(table: Table, entry: Entry, limit: int) -> list[Request]:
    # only reachable with max_count: what a reader without the consistency rule would do
    return [
        Request(table, address, min(limit, entry.end - address), (entry,))
        for address in range(entry.address, entry.end, limit)
    ]


def plan_writes(
    items: Iterable[tuple[Entry, list[int]]], settings: LinkSettings
) -> list[tuple[Table, int, list[int]]]:
    """Writes of encoded values: contiguous entries of a table share one request."""
    writes: list[tuple[Table, int, list[int]]] = []
    for entry, words in sorted(items, key=lambda item: (item[0].table, item[0].address)):
        limit = (
            settings.max_write_bits if entry.table in BIT_TABLES else settings.max_write_registers
        )
        if writes:
            table, address, values = writes[-1]
            if (
                table == entry.table
                and address + len(values) == entry.address
                and len(values) + len(words) <= limit
            ):
                values.extend(words)
                continue
        writes.append((entry.table, entry.address, list(words)))
    return writes
