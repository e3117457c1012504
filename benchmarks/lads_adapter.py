"""The LADS adapter against raw asyncua on the same LADS nodes of the CellQualia simulator, in
one run, and the simulator's start-up time.

Run: .venv/bin/python benchmarks/lads_adapter.py. Reports:

- start-up: seconds from `start_simulator("cellqualia")` to a served LADS device (asyncua init,
  nodeset import, building the device; the issue asks for under 3 s or a cache);
- reads: `device.read(channel)` through `cellqualia+opcua://` against an asyncua Client reading
  the same value variable, N reads each, interleaved in rounds (target: ratio >= 0.8);
- subscriptions: values per second the adapter turns into Samples during a run at speed=max,
  against a raw asyncua subscription to the same variables counting data changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from asyncua import ua
from asyncua.client.client import Client

import cellauto
from cellauto.schema import EventKind
from cellauto.sim import start_simulator

READS = 300
ROUNDS = 3
CHANNEL = "incubator.temperature"


async def main() -> None:
    logging.disable(logging.WARNING)
    started = time.perf_counter()
    sim = await start_simulator("cellqualia", seed=1)
    print(f"simulator start-up: {time.perf_counter() - started:.2f} s")
    url = sim.url.replace("cellqualia+opcua://", "opc.tcp://")
    device = await cellauto.connect(sim.url, device_id="cq", time=sim.time)
    raw = Client(url, timeout=10)
    await raw.connect()
    try:
        ns = await raw.get_namespace_index("urn:cellauto:gateway")
        node = raw.get_node(f"ns={ns};s=cellqualia-sim.incubator.temperature.SensorValue")
        adapter_s = raw_s = 0.0
        for _ in range(ROUNDS):
            t = time.perf_counter()
            for _ in range(READS):
                await device.read(CHANNEL)
            adapter_s += time.perf_counter() - t
            t = time.perf_counter()
            for _ in range(READS):
                await node.read_data_value()
            raw_s += time.perf_counter() - t
        n = READS * ROUNDS
        print(
            f"reads: adapter {n / adapter_s:.0f}/s, raw asyncua {n / raw_s:.0f}/s, "
            f"ratio {raw_s / adapter_s:.2f} (target >= 0.80)"
        )
        await subscriptions(device, raw, ns)
    finally:
        await raw.disconnect()
        await device.close()
        await sim.stop()


async def subscriptions(device: cellauto.Device, raw: Client, ns: int) -> None:
    counted = {"raw": 0}

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            counted["raw"] += 1

    channels = list(device.profile.channels())
    nodes = [
        raw.get_node(
            f"ns={ns};s=cellqualia-sim.{c}.{'TargetValue' if 'setpoint' in c else 'SensorValue'}"
        )
        for c in channels
    ]
    sub = await raw.create_subscription(20, Handler())
    # as the adapter's transport subscribes: a value written again with a new timestamp counts
    trigger = ua.DataChangeFilter(Trigger=ua.DataChangeTrigger.StatusValueTimestamp)
    await sub._subscribe(nodes, mfilter=trigger, queuesize=10_000)
    samples = device.subscribe()
    got = 0

    async def count() -> None:
        nonlocal got
        async for _ in samples:
            got += 1

    counting = asyncio.create_task(count())
    events = device.events()
    t = time.perf_counter()
    run = await device.start_program("Isolator decontamination")
    async for event in events:
        if event.kind is EventKind.PROMPT:
            await device.answer_prompt(str(event.data["prompt_id"]), "done", "bench")
            break
    await run
    elapsed = time.perf_counter() - t
    await asyncio.sleep(0.5)  # let both subscribers drain what the server already sent
    samples.close()
    await counting
    await sub.delete()
    print(
        f"subscriptions over a {elapsed:.1f} s run: adapter {got} samples, raw {counted['raw']} "
        f"data changes, ratio {got / max(counted['raw'], 1):.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
