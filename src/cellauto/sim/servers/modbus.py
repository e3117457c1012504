"""A Modbus TCP server laid out by a register map: pymodbus's async server, one data block per
mapped span (gaps up to the map's ``max_gap`` read as 0, as its devices promise), with the hooks
a table-driven simulated PLC needs:

- `on_request`: called before each request is served, at one instant of virtual time (what a
  PLC does between two scans); it may answer with a Modbus exception code instead.
- `scans` and `on_write`: what the device does between requests (react to writes, update
  values), for devices that act only when asked.
- `faults`: exception replies injected per (table, address).
- `set`/`get_raw` by entry name, `set_words`/`get_words` raw; while the server is down
  (`stop`, a dropped link) writes go to the saved image and are served once it is back.
- `stall`/`resume`: stop answering (requests wait) and go on.

Any Modbus device simulator needs only its register map and its behaviour on top of this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from cellauto.transport.modbus import RegisterMap, Table, encode
from cellauto.transport.modbus.codec import Value

__all__ = ["READ_FC", "MapServer", "RequestHook"]

READ_FC = {"coils": 1, "discrete": 2, "holding": 3, "input": 4}
TABLE_OF_FC = {1: "coils", 5: "coils", 15: "coils", 2: "discrete", 3: "holding", 6: "holding"}
TABLE_OF_FC |= {16: "holding", 4: "input"}
Scan = Callable[["MapServer"], Awaitable[None]]
RequestHook = Callable[[str, Table, int, int, list[int] | None], Awaitable[int | None]]
"""(kind "read"|"write", table, address, count, written values or None) -> exception code or
None to serve the request."""


class MapServer:
    """Serves `regmap` on `host` (an ephemeral port unless `port`) as unit `unit_id`."""

    def __init__(
        self,
        regmap: RegisterMap,
        *,
        unit_id: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.map = regmap
        self.unit_id = regmap.link.unit_id if unit_id is None else unit_id
        self.host = host
        self.requests: list[tuple[str, str, int, int]] = []  # (kind, table, address, count)
        self.record_requests = True
        self.faults: dict[tuple[str, int], int] = {}  # (table, address) -> exception code
        self.fault_count: dict[tuple[str, int], int] = {}  # how many times; absent = always
        self.scans: list[Scan] = []
        self.on_write: list[Callable[[str, int, list[int]], Awaitable[None]]] = []
        self.on_request: list[RequestHook] = []
        self._internal = False
        self._saved: dict[str, list[int]] = {}
        self._pending: list[tuple[Table, int, list[int]]] = []
        self._written: list[tuple[str, int, list[int]]] = []
        self._server: ModbusTcpServer | None = None
        self._running = asyncio.Event()
        self._running.set()
        self.port = port

    @property
    def serving(self) -> bool:
        """Whether the server listens (False while stopped, e.g. a dropped link)."""
        return self._server is not None

    def _layout(self) -> tuple[list[SimData], list[SimData], list[SimData], list[SimData]]:
        spans: dict[str, list[tuple[int, int]]] = {t: [] for t in READ_FC}
        for entry in self.map.entries.values():
            spans[entry.table].append((entry.address, entry.end))
        for ring in self.map.rings:
            spans[ring.table].append((ring.base, ring.base + ring.capacity * ring.stride))
        for block in self.map.downloads:
            spans["holding"].append((block.data_address, block.data_address + block.data_words))
        blocks: dict[str, list[SimData]] = {}
        for table, table_spans in spans.items():
            merged: list[list[int]] = []
            for start, end in sorted(table_spans):
                if merged and start <= merged[-1][1] + self.map.link.max_gap:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            bits = table in ("coils", "discrete")
            if bits and merged:  # pymodbus checks bit blocks in register units: use one span
                merged = [[merged[0][0], max(end for _, end in merged)]]
            datatype = DataType.BITS if bits else DataType.REGISTERS
            blocks[table] = [
                SimData(start, count=end - start, values=False if bits else 0, datatype=datatype)
                for start, end in merged
            ] or [SimData(0, count=1, values=False if bits else 0, datatype=datatype)]
        return blocks["coils"], blocks["discrete"], blocks["holding"], blocks["input"]

    async def start(self) -> MapServer:
        """Listen (again, on the same port and with the values it had, after `stop`)."""
        device = SimDevice(self.unit_id, simdata=self._layout(), action=self._action)
        self._server = ModbusTcpServer(device, address=(self.host, self.port))
        await self._server.serve_forever(background=True)
        listener: Any = self._server.transport
        assert listener is not None
        self.port = listener.sockets[0].getsockname()[1]
        for key, words in self._saved.items():
            self._runtime().block[key][2][:] = words
        pending, self._pending = self._pending, []
        for table, address, words in pending:
            await self.set_words(table, address, words)
        return self

    async def stop(self) -> None:
        """Stop listening and drop every client connection (the values are kept)."""
        if self._server is not None:
            self._saved = {key: list(block[2]) for key, block in self._runtime().block.items()}
            server, self._server = self._server, None
            await server.shutdown()  # type: ignore[no-untyped-call]

    async def restart(self) -> None:
        """Start again on the same port with the values it had (a PLC whose link came back)."""
        await self.start()

    def stall(self) -> None:
        """Stop answering: requests wait (clients time out) until `resume`."""
        self._running.clear()

    def resume(self) -> None:
        """Answer again."""
        self._running.set()

    async def _action(
        self,
        fc: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if self._internal:
            return None
        table: Table = TABLE_OF_FC[fc]  # type: ignore[assignment]
        if fc == 5 and values is None:
            return None  # pymodbus re-reads a single coil after writing it
        await self._running.wait()
        await self.scan()
        kind = "read" if values is None else "write"
        if self.record_requests:
            self.requests.append((kind, table, address, count))
        for (f_table, f_address), code in self.faults.items():
            if f_table == table and address <= f_address < address + max(count, 1):
                left = self.fault_count.get((f_table, f_address))
                if left is not None:
                    if left <= 0:
                        continue
                    self.fault_count[(f_table, f_address)] = left - 1
                return ExcCodes(code)
        written = None if values is None else [int(v) for v in values]
        for hook in self.on_request:
            answer = await hook(kind, table, address, count, written)
            if answer is not None:
                return ExcCodes(answer)
        if written is not None:
            self._written.append((table, address, written))
        return None

    async def scan(self) -> None:
        """What the device does between two requests: react to writes, then run the scans."""
        written, self._written = self._written, []
        for table, address, words in written:
            for hook in self.on_write:
                await hook(table, address, words)
        for scan in self.scans:
            await scan(self)

    def _runtime(self) -> Any:
        assert self._server is not None
        return self._server.context.devices[self.unit_id]  # type: ignore[union-attr]

    async def set_words(self, table: Table, address: int, words: list[int]) -> None:
        """Set raw registers (or 0/1 bits) directly, as the device's own logic would."""
        if self._server is None:
            self._pending.append((table, address, list(words)))
            return
        self._internal = True
        try:
            values: list[Any] = (
                [bool(w) for w in words] if table in ("coils", "discrete") else words
            )
            await self._runtime().async_setValues(READ_FC[table], address, values)
        finally:
            self._internal = False

    async def get_words(self, table: Table, address: int, count: int) -> list[int]:
        """Raw registers (or 0/1 bits) as the device holds them (served or not)."""
        if self._server is None:
            raise RuntimeError("the Modbus server is stopped: its registers are not served")
        self._internal = True
        try:
            got = await self._runtime().async_getValues(READ_FC[table], address, count)
        finally:
            self._internal = False
        return [int(v) for v in got]

    async def set(self, name: str, value: Value) -> None:
        """Set an entry by name."""
        entry = self.map.entry(name)
        await self.set_words(entry.table, entry.address, encode(entry.register, value))

    async def get_raw(self, name: str) -> list[int]:
        """An entry's raw registers."""
        entry = self.map.entry(name)
        return await self.get_words(entry.table, entry.address, entry.words)
