"""Register reads through ModbusTransport vs raw pymodbus reads of the same registers, on the
same loopback server, in one run.

Run: .venv/bin/python benchmarks/modbus_read.py [seconds]. The server is pymodbus's own async
server laid out like the ACC-200 map (schemas/protocols/acc200.toml); server and clients share
one process and event loop, so absolute rates are lower than against a real PLC, and the ratio
is the figure of merit (target >= 0.8). Pacing is switched off (min_interval 0) on both sides:
with the map's 20 ms pacing both would run at 50 requests/s.

Cases: three float32 process values in one request (ours decodes them; raw returns registers),
and all ten vessels' confluency (ours: two reads bracketed by the sequence register, three
requests; raw: the same three requests).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from cellauto.transport.modbus import ModbusTransport, PymodbusLink, load_register_map


async def rate(read: Callable[[], Awaitable[object]], seconds: float) -> float:
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(10):
            await read()
        n += 10
    return n / seconds


def device() -> SimDevice:
    regs = DataType.REGISTERS
    bits = DataType.BITS
    return SimDevice(
        1,
        simdata=(
            [SimData(0, count=32, values=False, datatype=bits)],
            [SimData(0, count=32, values=False, datatype=bits)],
            [SimData(0, count=3100, values=0, datatype=regs)],
            [SimData(0, count=1200, values=0x4214, datatype=regs)],
        ),
    )


async def main(seconds: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    regmap = load_register_map("acc200")
    server = ModbusTcpServer(device(), address=("127.0.0.1", 0))
    await server.serve_forever(background=True)
    assert server.transport is not None
    port = server.transport.sockets[0].getsockname()[1]
    settings = regmap.link.model_copy(update={"min_interval": 0.0})
    raw = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, reconnect_delay=0)
    await raw.connect()
    link = PymodbusLink("127.0.0.1", port, device="bench", settings=settings)
    cases: dict[str, tuple[Callable[[], Awaitable[object]], Callable[[], Awaitable[object]]]]
    async with ModbusTransport(regmap, link) as plc:
        process = ("incubator.temperature", "incubator.humidity", "incubator.co2")

        async def raw_process() -> object:
            return (await raw.read_input_registers(100, count=6, device_id=1)).registers

        async def raw_vessels() -> object:
            await raw.read_input_registers(999, count=119, device_id=1)
            await raw.read_input_registers(1132, count=18, device_id=1)
            return await raw.read_input_registers(999, count=1, device_id=1)

        cases = {
            "3 x float32, 1 request": (raw_process, lambda: plc.read(*process)),
            "10 vessels, 3 requests": (raw_vessels, lambda: plc.read("vessel*.confluency")),
        }
        for label, (raw_read, ours_read) in cases.items():
            results: dict[str, list[float]] = {"raw": [], "cellauto": []}
            await ours_read()
            for _ in range(5):  # interleaved, medians: the machine is shared and noisy
                results["raw"].append(await rate(raw_read, seconds))
                results["cellauto"].append(await rate(ours_read, seconds))
            raw_rate = statistics.median(results["raw"])
            ours_rate = statistics.median(results["cellauto"])
            print(f"{label}:")
            print(f"  raw pymodbus           : {raw_rate:8.0f} reads/s  (median of 5)")
            print(f"  ModbusTransport.read   : {ours_rate:8.0f} reads/s  (median of 5)")
            print(f"  ratio                  : {ours_rate / raw_rate:.2f}  (target >= 0.80)")
    raw.close()
    await server.shutdown()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0))
