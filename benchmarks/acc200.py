"""The ACC-200 adapter against raw pymodbus, and a 14-day ten-vessel run into a record.

Run: .venv/bin/python benchmarks/acc200.py [seconds]

1. Register reads through the adapter (`Device.read`, which reads the channel with the scan
   time `process.time` in one request, decodes both and builds a Sample) against raw pymodbus
   reads of the same registers (input 98-101) on the same simulated ACC-200, interleaved in one
   run, medians of 9, per wall second and per CPU second of this process (client and
   simulator; on a shared machine the CPU rate is the steadier figure). The simulator runs at
   speed=1 (its scans are minutes apart) and pacing is off on both sides, as in
   benchmarks/modbus_read.py. Then the same cases one call each in turn, 5000 times: the median
   wall time per read (GC pauses and other processes' slices fall outside the median; the
   rates include them). Target: at least 0.8 of raw.
2. The profile's 14-day oral mucosal cell-sheet program on all ten vessels at speed=max inside a
   `cellauto.Batch` (scan 3600 s, poll 1800 s), recorded and sealed: simulated seconds per wall
   second.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable

from pymodbus.client import AsyncModbusTcpClient

import cellauto
from cellauto.registry import parse_url
from cellauto.sim import start_simulator
from cellauto.transport.modbus import load_register_map
from cellauto_adapters.acc200 import Acc200Adapter

RAW = "raw pymodbus"
ROUNDS = 9
CALLS = 5000


async def rate(read: Callable[[], Awaitable[object]], seconds: float) -> tuple[float, float]:
    """Reads per wall second and per CPU second of this process (client and simulator: the
    CPU rate is what the code costs, the wall rate also what other processes took)."""
    n = 0
    cpu = time.process_time()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(10):
            await read()
        n += 10
    return n / seconds, n / (time.process_time() - cpu)


async def per_call(
    cases: dict[str, Callable[[], Awaitable[object]]], calls: int
) -> dict[str, float]:
    """Median wall time of one call of each case, the cases taking turns call by call (what
    the machine's other load does to one case it does to the others alike)."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(calls):
        for name, read in cases.items():
            start = time.perf_counter()
            await read()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


async def reads(seconds: float) -> None:
    sim = await start_simulator("acc200", speed=1.0, seed=1)
    regmap = load_register_map("acc200")
    unpaced = regmap.model_validate(
        regmap.model_dump() | {"link": regmap.link.model_dump() | {"min_interval": 0.0}}
    )
    url = parse_url(sim.url + "?heartbeat=0")
    device = Acc200Adapter("bench", cellauto.load_profile("acc200"), url, regmap=unpaced)
    await device.connect()
    port = int(sim.url.rsplit(":", 1)[1])
    raw = AsyncModbusTcpClient("127.0.0.1", port=port, retries=0, reconnect_delay=0)
    await raw.connect()

    def raw_read() -> Awaitable[object]:
        return raw.read_input_registers(98, count=4, device_id=1)

    cases: dict[str, Callable[[], Awaitable[object]]] = {
        RAW: raw_read,
        "ModbusTransport.read": lambda: device.plc.read("incubator.temperature", "process.time"),
        "Acc200Adapter.read": lambda: device.read("incubator.temperature"),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    await device.read("incubator.temperature")
    for _ in range(ROUNDS):  # interleaved, medians: the machine is shared and noisy
        for name, read in cases.items():
            results[name].append(await rate(read, seconds))
    wall = {name: statistics.median(w for w, _ in r) for name, r in results.items()}
    cpu = {name: statistics.median(c for _, c in r) for name, r in results.items()}
    print(
        f"incubator.temperature with its scan time (input 98-101, 1 request), medians of {ROUNDS}:"
    )
    for name in cases:
        print(
            f"  {name:<22}: {wall[name]:8.0f} reads/s  ratio {wall[name] / wall[RAW]:.2f}"
            f"   per CPU s: {cpu[name]:8.0f}  ratio {cpu[name] / cpu[RAW]:.2f}"
        )
    times = await per_call(cases, CALLS)
    print(f"the same, one call of each case in turn, {CALLS} times: median wall time per read")
    for name in cases:
        print(f"  {name:<22}: {times[name] * 1e6:8.1f} us  ratio {times[RAW] / times[name]:.2f}")
    print("  (target: Acc200Adapter.read >= 0.80 of raw)")
    raw.close()
    await device.close()
    await sim.stop()


async def long_run() -> None:
    records = tempfile.mkdtemp(prefix="acc200-bench-")
    started = time.perf_counter()
    async with cellauto.Batch(
        "B-ACC200-BENCH",
        product="oral mucosal epithelial cell sheets (simulated)",
        operator="bench",
        sim=True,
        prompts=cellauto.AutoAnswer(user="bench"),
        records=records,
    ) as batch:
        iace = await batch.connect("acc200+sim://?scan=3600&poll=1800")
        result = await (await iace.start_program("oral mucosal cell sheet", {"vessel_count": 10}))
    wall = time.perf_counter() - started
    simulated = result.total_runtime.total_seconds()
    print("14-day oral mucosal sheet run, 10 vessels, speed=max, into a record:")
    print(f"  outcome {result.outcome}, {simulated / 86400:.1f} simulated days, {wall:.1f} s wall")
    print(f"  {len(result.files)} images stored; {simulated / wall:,.0f} simulated s per wall s")


async def main(seconds: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    await reads(seconds)
    await long_run()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 1.0))
