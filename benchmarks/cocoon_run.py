"""A simulated 10-day CAR-T run on the Cocoon simulator, end to end: simulator OPC UA server ->
adapter -> samples -> batch record, with every channel at its profile sample period.

Run: .venv/bin/python benchmarks/cocoon_run.py. Reports simulated seconds per wall second, and
the adapter's samples/s against a raw asyncua subscription to the same variables in the same
run and process (target: ratio >= 0.8). Everything shares one event loop and one core.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from asyncua.client.client import Client

import cellauto
from cellauto.records import RecordWriter, open_batch
from cellauto.registry import parse_url
from cellauto.schema import BatchInfo, EventKind
from cellauto_adapters.cocoon import CocoonAdapter
from cellauto_adapters.cocoon.nodes import Paths
from cellauto_simulators.cocoon import start_simulator

PERIOD = 0.02


async def raw_subscription(url: str, paths: list[str], counter: list[int]) -> Client:
    """A plain asyncua client counting data changes of `paths`."""

    class Count:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            counter[0] += 1

    client = Client(url)
    await client.connect()
    nodes = [await client.nodes.objects.get_child(p.split("/")) for p in paths]
    subscription = await client.create_subscription(PERIOD * 1000, Count())
    await subscription.subscribe_data_change(nodes, queuesize=0)
    return client


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    profile = cellauto.load_profile("cocoon")
    sim = await start_simulator(profile, {"speed": "max", "seed": "1"})
    device = CocoonAdapter("cocoon-1", profile, parse_url(sim.url), time=sim.time)
    raw, stored = [0], [0]
    paths = [Paths(2).channel(channel) for channel in profile.channels()]
    client = await raw_subscription(sim.url.replace("cocoon+opcua", "opc.tcp"), paths, raw)
    folder = Path(tempfile.mkdtemp(prefix="cocoon-bench-")) / "record"
    record = RecordWriter.create(folder, BatchInfo(batch_id="BENCH-1", product="CAR-T"))
    samples, events = device.subscribe(maxsize=1_000_000), device.events()
    await device.connect()

    async def store_samples() -> None:
        async for sample in samples:
            record.add_sample(sample)
            stored[0] += 1

    async def operate() -> None:
        async for event in events:
            record.add_event(event)
            if event.kind is EventKind.PROMPT:
                await device.answer_prompt(str(event.data["prompt_id"]), "done", "bench")

    tasks = [asyncio.create_task(store_samples()), asyncio.create_task(operate())]
    sim_start, wall_start, raw_start = sim.time.now(), time.perf_counter(), raw[0]
    run = await device.start_program("CAR-T", user="bench")
    result = await run
    await asyncio.sleep(0.5)  # let the last notifications land
    wall = time.perf_counter() - wall_start
    simulated = (sim.time.now() - sim_start).total_seconds()
    await device.close()
    await client.disconnect()
    await sim.stop()
    for task in tasks:
        task.cancel()
    record.close()
    rows = open_batch(folder).samples.num_rows
    adapter_rate = stored[0] / wall
    raw_rate = (raw[0] - raw_start) / wall
    print(f"run: {result.outcome}, {result.total_runtime} simulated, {wall:.1f} s wall")
    print(f"simulated s per wall s: {simulated / wall:,.0f}")
    print(f"adapter -> record: {adapter_rate:,.0f} samples/s ({rows:,} rows in the record)")
    print(f"raw asyncua subscription: {raw_rate:,.0f} notifications/s")
    print(f"ratio: {adapter_rate / raw_rate:.2f} (target >= 0.8)")


if __name__ == "__main__":
    asyncio.run(main())
