"""Maholo (HTTP family) benchmarks, all in one run against the same simulator server.

1. Status polls (`GET /channels/incubator.temperature`) per second: `MaholoAdapter.read()` vs a
   raw aiohttp session sending the same request (1 and 2: the best of 5 alternating rounds each
   way, as the machine may be shared). Target ratio >= 0.8.
2. Job submissions (`POST /jobs` with an Idempotency-Key) per second: the adapter's request path
   (`HttpDevice.request(..., idempotent_post=True)`, which also waits for the answer's event on
   the stream) vs the raw session. Target ratio >= 0.8.
3. Event stream throughput (events per second): sample events pushed by the server, applied by
   the adapter (as Samples) vs read by a raw aiohttp WebSocket client.
4. The 40-day RPE protocol at max speed, prompts answered: wall seconds.

The simulator and both clients share one event loop (speed=1 for 1-3). Run:
.venv/bin/python benchmarks/maholo_http.py [requests] [events]
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import Any

import aiohttp

from cellauto.registry import connect
from cellauto.schema import EventKind
from cellauto.sim import start_simulator
from cellauto_adapters.maholo import MaholoAdapter
from cellauto_simulators.maholo import MaholoSimulator

CHANNEL = "incubator.temperature"
JOB = {"program": "iPSC-RPE differentiation", "parameters": {}}


async def rate(call: Any, count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        await call()
    return count / (time.perf_counter() - start)


async def compare(adapter: Any, raw: Any, count: int, rounds: int = 5) -> tuple[float, float]:
    """Best rate of each over `rounds` alternating rounds (the machine may be shared)."""
    best_adapter = best_raw = 0.0
    for _ in range(rounds):
        best_raw = max(best_raw, await rate(raw, count // rounds))
        best_adapter = max(best_adapter, await rate(adapter, count // rounds))
    return best_adapter, best_raw


async def requests(count: int) -> None:
    sim = await start_simulator("maholo", seed=1, failures="off")
    assert isinstance(sim, MaholoSimulator)
    device = await connect(sim.url + "?heartbeat=0", device_id="m-bench", time=sim.time)
    assert isinstance(device, MaholoAdapter)
    base = sim.server.base_url
    async with aiohttp.ClientSession() as raw:

        async def raw_poll() -> None:
            async with raw.get(f"{base}/channels/{CHANNEL}") as response:
                await response.json()

        async def adapter_poll() -> None:
            await device.read(CHANNEL)

        async def raw_submit() -> None:
            headers = {"Idempotency-Key": str(uuid.uuid4())}
            async with raw.post(f"{base}/jobs", json=JOB, headers=headers) as response:
                await response.json()

        async def adapter_submit() -> None:
            await device.request(
                "POST", "/jobs", operation="submit", body=JOB, idempotent_post=True
            )

        await raw_poll()
        await adapter_poll()
        polls_adapter, polls_raw = await compare(adapter_poll, raw_poll, count)
        await device.start_program("iPSC-RPE differentiation", {})  # later submissions queue
        submit_adapter, submit_raw = await compare(adapter_submit, raw_submit, count)
    await device.close()
    await sim.stop()
    print(f"status polls/s      adapter {polls_adapter:8.0f}  raw {polls_raw:8.0f}  "
          f"ratio {polls_adapter / polls_raw:.2f}")  # fmt: skip
    print(f"job submissions/s   adapter {submit_adapter:8.0f}  raw {submit_raw:8.0f}  "
          f"ratio {submit_adapter / submit_raw:.2f}")  # fmt: skip


def burst(sim: MaholoSimulator, count: int) -> None:
    for n in range(count):
        sim.server.emit(
            "sample",
            {"channel": CHANNEL, "value": 37.0 + n * 1e-6, "unit": "Cel", "quality": "good",
             "time": "2025-01-01T00:00:00.000000Z", "n": 10_000 + n},
        )  # fmt: skip


async def events(count: int) -> None:
    sim = await start_simulator("maholo", seed=1, failures="off")
    assert isinstance(sim, MaholoSimulator)
    device = await connect(sim.url + "?heartbeat=0", device_id="m-bench", time=sim.time)
    assert isinstance(device, MaholoAdapter)
    feed = device.subscribe([CHANNEL])
    start = time.perf_counter()
    burst(sim, count)
    got = 0
    async for sample in feed:
        if sample.seq >= 10_000:
            got += 1
            if got == count:
                break
    adapter = count / (time.perf_counter() - start)
    await device.close()
    async with (
        aiohttp.ClientSession() as raw,
        raw.ws_connect(f"{sim.server.base_url}/events?after={sim.server.log.seq}") as ws,
    ):
        start = time.perf_counter()
        burst(sim, count)
        got = 0
        async for message in ws:
            message.json()
            got += 1
            if got == count:
                break
        raw_rate = count / (time.perf_counter() - start)
    await sim.stop()
    print(f"event stream ev/s   adapter {adapter:8.0f}  raw {raw_rate:8.0f}  "
          f"ratio {adapter / raw_rate:.2f}")  # fmt: skip


async def protocol() -> None:
    sim = await start_simulator("maholo", seed=1, speed="max")
    device = await connect(sim.url, device_id="m-bench", time=sim.time)
    feed = device.events()

    async def operator() -> None:
        async for event in feed:
            if event.kind is EventKind.PROMPT:
                await device.answer_prompt(str(event.data["prompt_id"]), "done", "bench")

    helper = asyncio.create_task(operator())
    start = time.perf_counter()
    result = await (await device.start_program("iPSC-RPE differentiation", {}))
    wall = time.perf_counter() - start
    helper.cancel()
    await device.close()
    await sim.stop()
    days = result.total_runtime.total_seconds() / 86400
    print(f"40-day RPE protocol at max speed: {days:.1f} simulated days in {wall:.2f} s wall")


async def main(count: int, event_count: int) -> None:
    await requests(count)
    await events(event_count)
    await protocol()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    asyncio.run(main(*(args + [1000, 20000][len(args) :])))
