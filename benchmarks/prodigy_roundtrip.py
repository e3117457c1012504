"""Prodigy benchmarks.

1. Request/response round trips per second on one pseudo-terminal served by the Prodigy
   simulator (in its own thread and event loop, speed=1): `ProdigyAdapter.read()` vs raw
   pyserial sending the same `GET` frame and reading the reply frame. Target ratio >= 0.8.
2. A simulated TCT run (13 days, prompts answered) end to end into a batch record through
   `cellauto.Batch` at speed=max: simulated seconds per wall second.

Run: .venv/bin/python benchmarks/prodigy_roundtrip.py [round_trips]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

import serial

import cellauto
from cellauto.batch import AutoAnswer, Batch
from cellauto.profiles import load_profile
from cellauto.records import open_batch
from cellauto.registry import parse_url
from cellauto_adapters.prodigy import ProdigyAdapter
from cellauto_adapters.prodigy.codec import Message, encode, make_framer
from cellauto_simulators.prodigy import ProdigySimulator, start_simulator

CHANNEL = "chamber.temperature"


class SimulatorThread:
    """The simulator on a pty, in a thread of its own (so blocking pyserial can talk to it)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.sim: ProdigySimulator | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        profile = load_profile("prodigy")
        self.sim = self.loop.run_until_complete(start_simulator(profile, {"pty": "1"}))
        self.ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        assert self.sim is not None
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


def raw_pyserial(path: str, n: int) -> float:
    framer = make_framer()
    port = serial.Serial(path, baudrate=115200, timeout=1)
    try:
        port.write(framer.encode(encode(Message("H", 1, "HELLO"))))
        port.read_until(b"\x03")
        port.read(2)
        start = time.perf_counter()
        for i in range(n):
            seq = i % 999_998 + 2
            port.write(framer.encode(encode(Message("H", seq, "GET", {"ch": CHANNEL}))))
            while True:
                frame = port.read_until(b"\x03") + port.read(2)
                decoded = framer.feed(frame)
                if decoded and isinstance(decoded[0], bytes) and decoded[0][:1] == b"R":
                    break
        return n / (time.perf_counter() - start)
    finally:
        port.close()


async def through_adapter(url: str, n: int) -> float:
    parsed = parse_url(url)
    parsed.options["heartbeat"] = "0"
    device = ProdigyAdapter("prodigy-1", load_profile("prodigy"), parsed)
    await device.connect()
    try:
        start = time.perf_counter()
        for _ in range(n):
            await device.read(CHANNEL)
        return n / (time.perf_counter() - start)
    finally:
        await device.close()


async def tct_into_record(folder: Path) -> tuple[float, float, int]:
    """(simulated s, wall s, samples recorded) for one TCT run recorded by a Batch."""
    start = time.perf_counter()
    async with Batch(
        "B-0001",
        product="CAR-T",
        operator="alice",
        records=folder,
        prompts=AutoAnswer(user="alice"),
    ) as batch:
        prodigy = await batch.connect("prodigy+sim://?speed=max&seed=1")
        run = await prodigy.start_program("TCT", {"moi": cellauto.Q(5, "1")})
        result = await run
    wall = time.perf_counter() - start
    record = open_batch(folder / "B-0001")
    return result.total_runtime.total_seconds(), wall, record.samples.num_rows


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    server = SimulatorThread()
    try:
        assert server.sim is not None
        path = server.sim.url.removeprefix("prodigy+serial://")
        raw_pyserial(path, n // 10)  # warm up
        raw = raw_pyserial(path, n)
        ours = asyncio.run(through_adapter(server.sim.url, n))
    finally:
        server.stop()
    print(f"raw pyserial:    {raw:9.0f} round trips/s")
    print(f"ProdigyAdapter:  {ours:9.0f} round trips/s")
    print(f"ratio:           {ours / raw:9.2f} (target >= 0.8)")
    with tempfile.TemporaryDirectory() as tmp:
        simulated, wall, rows = asyncio.run(tct_into_record(Path(tmp)))
    print(
        f"TCT into a batch record: {simulated / 86400:.1f} simulated days in {wall:.1f} s "
        f"= {simulated / wall:,.0f} simulated s per wall s ({rows} samples recorded)"
    )


if __name__ == "__main__":
    main()
