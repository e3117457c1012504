"""`ModbusTransport`: named, typed reads and writes of a device described by a register map.

Consistency rules (docs/modbus.md): an entry is always read in one request (no torn
multi-register values); when the members of a consistent group that one read asks for span
several requests, the read is bracketed by reads of the group's sequence register and repeated
while it changes; every write is read back and compared; event rings are read from the last
sequence number seen, and records overwritten before they were read are reported as lost.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Self

from cellauto.errors import (
    ModbusInconsistentRead,
    ModbusValueError,
    ModbusWriteNotConfirmed,
    RecipeDownloadError,
    RegisterCodecError,
)
from cellauto.transport.base import ConnectionEvent

from .codec import Value, decode, decoder, encode, words_of
from .link import RegisterLink
from .plan import Request, plan_reads, plan_writes
from .regmap import Entry, RegisterMap, Ring

__all__ = ["ModbusTransport", "RingRead", "recipe_crc"]


def recipe_crc(payload: bytes) -> int:
    """CRC-32/ISO-HDLC (zlib's, the CRC of PNG and Ethernet) of `payload`;
    ``recipe_crc(b"123456789") == 0xCBF43926``."""
    return zlib.crc32(payload) & 0xFFFFFFFF


@dataclass(frozen=True)
class _ReadPlan:
    """How one read is done: its requests and, for groups spanning requests, the re-check."""

    operation: str
    requests: list[Request]
    recheck: list[Request] = field(default_factory=list)
    sequences: tuple[str, ...] = ()
    wanted: frozenset[str] = frozenset()
    groups: tuple[str, ...] = ()
    fields: tuple[tuple[str, int, int, Callable[[list[int]], Value]], ...] = ()
    """For a plan of one request: each entry's name, slice of the answer and decoder."""


@dataclass(frozen=True)
class RingRead:
    """Records read from an event ring, oldest first, and the sequence numbers lost (records
    the device overwrote before they were read), if any."""

    records: list[dict[str, Value]]
    head: int
    lost: range = field(default_factory=lambda: range(0))


class ModbusTransport:
    """Reads and writes entries of `regmap` by name over `link` (a `PymodbusLink` to a device,
    or a `ReplayLink` of a capture). `max_count` exists for tests only: it caps a request's
    size and lets entries split, which is what the consistency rules prevent."""

    def __init__(self, regmap: RegisterMap, link: RegisterLink, *, max_count: int | None = None):
        self.map = regmap
        self.link = link
        self.device = link.device
        self._max_count = max_count
        self._plans: dict[tuple[str, ...], _ReadPlan] = {}

    async def open(self) -> None:
        """Open the link."""
        await self.link.open()

    async def close(self) -> None:
        """Close the link."""
        await self.link.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def events(self) -> AsyncIterator[ConnectionEvent]:
        """Connection-state changes of the link."""
        return self.link.events()

    # ------------------------------------------------------------------ reads

    async def read(self, *names: str, operation: str = "") -> dict[str, Value]:
        """The values of the named entries (globs allowed: ``vessel3.*``), decoded."""
        plan = self._plans.get(names)
        if plan is None:
            plan = self._plans[names] = self._plan(names)
        operation = operation or plan.operation
        if plan.fields:
            request = plan.requests[0]
            words = await self.link.read(
                request.table, request.address, request.count, operation=operation
            )
            try:
                return {name: decode(words[a:b]) for name, a, b, decode in plan.fields}
            except RegisterCodecError as error:
                raise ModbusValueError(self.device, operation, str(error)) from None
        if not plan.sequences:
            return await self._execute(plan.requests, operation)
        for _ in range(self.map.link.consistency_retries):
            values = await self._execute(plan.requests, operation)
            after = await self._execute(plan.recheck, operation)
            if all(values[name] == after[name] for name in plan.sequences):
                return {name: value for name, value in values.items() if name in plan.wanted}
        raise ModbusInconsistentRead(
            self.device,
            operation,
            f"group(s) {', '.join(plan.groups)} changed during each of "
            f"{self.map.link.consistency_retries} attempts",
            hint="the device updates faster than the link reads; lower min_interval or retry",
        )

    def _plan(self, names: tuple[str, ...]) -> _ReadPlan:
        entries = self._entries(names)
        operation = f"read {', '.join(names)}"
        requests = plan_reads(entries, self.map.link, max_count=self._max_count)
        groups = {
            group.name: group
            for e in entries
            if (group := self.map.group_of(e.name)) is not None and group.sequence != e.name
        }
        spanning = [
            g
            for g in groups.values()
            if len({id(r) for r in requests for e in r.entries if self.map.group_of(e.name) is g})
            > 1
        ]
        if not spanning:
            return _ReadPlan(operation, requests, fields=_fields(requests))
        sequences = [self.map.entry(g.sequence) for g in spanning]
        # the first read of the sequence registers rides along with the data when adjacent
        return _ReadPlan(
            operation,
            plan_reads([*entries, *sequences], self.map.link, max_count=self._max_count),
            recheck=plan_reads(sequences, self.map.link),
            sequences=tuple(e.name for e in sequences),
            wanted=frozenset(e.name for e in entries),
            groups=tuple(g.name for g in spanning),
        )

    async def read_value(self, name: str, *, operation: str = "") -> Value:
        """The value of one entry."""
        return (await self.read(name, operation=operation))[name]

    def _entries(self, names: Iterable[str]) -> list[Entry]:
        entries: list[Entry] = []
        for name in names:
            matched = self.map.matching(name) if any(c in name for c in "*?[") else [name]
            if not matched:
                raise ModbusValueError(self.device, f"read {name}", "pattern matches no entry")
            for match in matched:
                try:
                    entries.append(self.map.entry(match))
                except KeyError as error:
                    raise ModbusValueError(
                        self.device, f"access {match}", str(error.args[0])
                    ) from None
        return entries

    async def _execute(self, plan: list[Request], operation: str) -> dict[str, Value]:
        raw: dict[str, list[int]] = {}
        for request in plan:
            words = await self.link.read(
                request.table, request.address, request.count, operation=operation
            )
            for entry in request.entries:
                start = max(entry.address - request.address, 0)
                end = min(entry.end, request.address + request.count) - request.address
                raw.setdefault(entry.name, []).extend(words[start:end])
        return {
            name: self._decode(self.map.entry(name), words, operation)
            for name, words in raw.items()
        }

    def _decode(self, entry: Entry, words: list[int], operation: str) -> Value:
        try:
            return decode(entry.register, words)
        except RegisterCodecError as error:
            raise ModbusValueError(self.device, operation, str(error)) from None

    # ------------------------------------------------------------------ writes

    async def write(self, values: Mapping[str, Value], *, operation: str = "") -> None:
        """Write entries (holding registers, coils) and confirm each by reading it back
        (entries marked ``readback = false`` and pulse coils excepted)."""
        operation = operation or f"write {', '.join(values)}"
        encoded: list[tuple[Entry, list[int]]] = []
        for name, value in values.items():
            entry = self._entries([name])[0]
            if entry.table not in ("holding", "coils"):
                raise ModbusValueError(
                    self.device, operation, f"{name} is in {entry.table}, which is read-only"
                )
            try:
                encoded.append((entry, encode(entry.register, value)))
            except RegisterCodecError as error:
                raise ModbusValueError(self.device, operation, str(error)) from None
        for table, address, words in plan_writes(encoded, self.map.link):
            await self.link.write(table, address, words, operation=operation)
        check = [(e, w) for e, w in encoded if e.register.readback and not e.register.pulse]
        if not check:
            return
        read_back = await self.read(
            *(e.name for e, _ in check), operation=f"{operation} (read-back)"
        )
        for entry, words in check:
            if encode(entry.register, read_back[entry.name]) != words:
                raise ModbusWriteNotConfirmed(
                    self.device, operation, entry.name, values[entry.name], read_back[entry.name]
                )

    async def pulse(self, coil: str, *, operation: str = "") -> None:
        """Set a command coil (the device clears it once it acted)."""
        await self.write({coil: True}, operation=operation or f"command {coil}")

    # ------------------------------------------------------------------ event rings

    async def read_ring(self, name: str, after: int, *, operation: str = "") -> RingRead:
        """Records of ring `name` with sequence numbers above `after`, oldest first. After a
        reconnect, call it with the last sequence number seen: nothing is read twice, and
        records the device overwrote meanwhile come back as `lost`."""
        ring = self.map.ring(name)
        operation = operation or f"read events {name}"
        for _ in range(self.map.link.consistency_retries):
            head = int(await self.read_value(ring.head, operation=operation))
            if head <= after:
                return RingRead([], head)
            first = max(after + 1, head - ring.capacity + 1)
            wanted = list(range(first, head + 1))
            records: list[dict[str, Value]] = []
            for run in _runs(ring, wanted, self.map.link.max_read_registers):
                records += await self._read_slots(ring, run, operation)
            if [r[ring.sequence_field] for r in records] == wanted:
                return RingRead(records, head, range(after + 1, first))
            # the device overwrote slots while they were read: start again from the head
        raise ModbusInconsistentRead(
            self.device,
            operation,
            f"ring {name} kept moving during {self.map.link.consistency_retries} attempts",
        )

    async def _read_slots(
        self, ring: Ring, seqs: list[int], operation: str
    ) -> list[dict[str, Value]]:
        address = ring.base + _slot(ring, seqs[0]) * ring.stride
        words = await self.link.read(
            ring.table, address, len(seqs) * ring.stride, operation=operation
        )
        records = []
        for i in range(len(seqs)):
            block = words[i * ring.stride : (i + 1) * ring.stride]
            record: dict[str, Value] = {}
            for f in ring.fields:
                try:
                    record[f.name] = decode(f, block[f.address : f.address + words_of(f)])
                except RegisterCodecError as error:
                    raise ModbusValueError(self.device, operation, str(error)) from None
            records.append(record)
        return records

    # ------------------------------------------------------------------ downloads

    async def download(self, name: str, payload: bytes, *, operation: str = "") -> int:
        """Write `payload` into download block `name`, with its length and CRC, pulse the
        commit coil, and return the device's status code; `RecipeDownloadError` unless the
        device accepted it."""
        block = self.map.download(name)
        operation = operation or f"download {name}"
        capacity = 2 * block.data_words
        if len(payload) > capacity:
            raise RecipeDownloadError(
                self.device, operation, f"{len(payload)} bytes exceed the block's {capacity}"
            )
        padded = payload + b"\x00" * (len(payload) % 2)
        words = [int.from_bytes(padded[i : i + 2], "big") for i in range(0, len(padded), 2)]
        step = self.map.link.max_write_registers
        for i in range(0, len(words), step):
            chunk = words[i : i + step]
            await self.link.write("holding", block.data_address + i, chunk, operation=operation)
            back = await self.link.read(
                "holding", block.data_address + i, len(chunk), operation=operation
            )
            if back != chunk:
                raise ModbusWriteNotConfirmed(
                    self.device, operation, f"{name} data @{block.data_address + i}", chunk, back
                )
        await self.write(
            {block.length: len(payload), block.crc: recipe_crc(payload)}, operation=operation
        )
        await self.pulse(block.commit, operation=operation)
        status = int(await self.read_value(block.status, operation=operation))
        if status != block.accepted:
            meaning = block.status_codes.get(str(status), "unknown status")
            raise RecipeDownloadError(
                self.device, operation, f"device answered status {status} ({meaning})"
            )
        return status


def _fields(
    requests: list[Request],
) -> tuple[tuple[str, int, int, Callable[[list[int]], Value]], ...]:
    """How to decode the answer of a plan's only request (empty unless there is just one, with
    every entry whole in it)."""
    if len(requests) != 1:
        return ()
    request = requests[0]
    base, end = request.address, request.address + request.count
    if any(e.address < base or e.end > end for e in request.entries):
        return ()  # an entry split by max_count (tests only)
    return tuple(
        (e.name, e.address - base, e.end - base, decoder(e.register)) for e in request.entries
    )


def _runs(ring: Ring, seqs: list[int], max_registers: int) -> list[list[int]]:
    """Split sequence numbers into runs of adjacent slots that fit one read."""
    per_read = max(1, max_registers // ring.stride)
    runs: list[list[int]] = []
    for seq in seqs:
        slot = _slot(ring, seq)
        if runs and len(runs[-1]) < per_read and slot == _slot(ring, runs[-1][-1]) + 1:
            runs[-1].append(seq)
        else:
            runs.append([seq])
    return runs


def _slot(ring: Ring, seq: int) -> int:
    return (seq - 1) % ring.capacity
