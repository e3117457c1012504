"""A test-only Modbus TCP server laid out by a register map: pymodbus's async server, one
data block per mapped span (gaps up to the map's max_gap stay readable, as its devices
promise), plus hooks to inject exception replies and to change values
between requests (what a PLC's scan does)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from cellauto.transport.modbus import RegisterMap, Table, encode
from cellauto.transport.modbus.codec import Value

READ_FC = {"coils": 1, "discrete": 2, "holding": 3, "input": 4}
TABLE_OF_FC = {1: "coils", 5: "coils", 15: "coils", 2: "discrete", 3: "holding", 6: "holding"}
TABLE_OF_FC |= {16: "holding", 4: "input"}
Scan = Callable[["MapServer"], Awaitable[None]]


class MapServer:
    """Serves `regmap` on 127.0.0.1 (an ephemeral port) as unit `unit_id`."""

    def __init__(self, regmap: RegisterMap, *, unit_id: int | None = None) -> None:
        self.map = regmap
        self.unit_id = regmap.link.unit_id if unit_id is None else unit_id
        self.requests: list[tuple[str, str, int, int]] = []  # (kind, table, address, count)
        self.faults: dict[tuple[str, int], int] = {}  # (table, address) -> exception code
        self.fault_count: dict[tuple[str, int], int] = {}  # how many times; absent = always
        self.scans: list[Scan] = []
        self.on_write: list[Callable[[str, int, list[int]], Awaitable[None]]] = []
        self._internal = False
        self._saved: dict[str, list[int]] = {}
        self._written: list[tuple[str, int, list[int]]] = []
        self._server: ModbusTcpServer | None = None
        self.port = 0

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
            blocks[table] = [
                SimData(
                    start,
                    count=end - start,
                    values=False if bits else 0,
                    datatype=DataType.BITS if bits else DataType.REGISTERS,
                )
                for start, end in merged
            ] or [
                SimData(
                    0,
                    count=1,
                    values=False if bits else 0,
                    datatype=DataType.BITS if bits else DataType.REGISTERS,
                )
            ]
        return blocks["coils"], blocks["discrete"], blocks["holding"], blocks["input"]

    async def start(self) -> MapServer:
        device = SimDevice(self.unit_id, simdata=self._layout(), action=self._action)
        self._server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        await self._server.serve_forever(background=True)
        assert self._server.transport is not None
        self.port = self._server.transport.sockets[0].getsockname()[1]
        for key, words in self._saved.items():
            self._runtime().block[key][2][:] = words
        return self

    async def stop(self) -> None:
        """Stop listening and drop every client connection."""
        if self._server is not None:
            self._saved = {key: list(block[2]) for key, block in self._runtime().block.items()}
            await self._server.shutdown()
            self._server = None

    async def restart(self) -> None:
        """Start again on the same port with the values it had (a PLC whose link came back)."""
        await self.start()

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
        table = TABLE_OF_FC[fc]
        if fc == 5 and values is None:
            return None  # pymodbus re-reads a single coil after writing it
        await self.scan()
        kind = "read" if values is None else "write"
        self.requests.append((kind, table, address, count))
        for (f_table, f_address), code in self.faults.items():
            if f_table == table and address <= f_address < address + max(count, 1):
                left = self.fault_count.get((f_table, f_address))
                if left is not None:
                    if left <= 0:
                        continue
                    self.fault_count[(f_table, f_address)] = left - 1
                return ExcCodes(code)
        if values is not None:
            self._written.append((table, address, [int(v) for v in values]))
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
        self._internal = True
        try:
            values: list[Any] = (
                [bool(w) for w in words] if table in ("coils", "discrete") else words
            )
            await self._runtime().async_setValues(READ_FC[table], address, values)
        finally:
            self._internal = False

    async def get_words(self, table: Table, address: int, count: int) -> list[int]:
        """Raw registers (or 0/1 bits) as the device holds them."""
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
