"""Data-change notifications/s through `OpcUaTransport.subscribe` vs a raw asyncua
data-change handler, with loss counted by sequence numbers.

Run: .venv/bin/python benchmarks/opcua_subscribe.py [count]. The server writes a UInt32
sequence `count` times as fast as it can; each client must see 1..count in order. Server and
client share one process and loop; the ratio is the figure of merit (target >= 0.8).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import time
from typing import Any

from asyncua.client.client import Client

from cellauto.sim.servers.opcua import Obj, OpcUaServer, Var
from cellauto.transport.opcua import OpcUaTransport

PATH = "2:Dev/2:Seq"
ROUNDS = 7


async def produce(server: OpcUaServer, count: int) -> None:
    for i in range(1, count + 1):
        await server.set(PATH, i)
        if i % 200 == 0:
            await asyncio.sleep(0)


async def raw_run(server: OpcUaServer, count: int) -> tuple[float, int]:
    seen: list[int] = []
    done = asyncio.Event()

    class Handler:
        def datachange_notification(self, node: Any, val: int, data: Any) -> None:
            seen.append(val)
            if val == count:
                done.set()

    async with Client(server.url) as client:
        node = await client.nodes.objects.get_child(["2:Dev", "2:Seq"])
        sub = await client.create_subscription(10, Handler())
        await sub.subscribe_data_change(node, queuesize=0, sampling_interval=0)
        await asyncio.sleep(0.2)
        seen.clear()
        t0 = time.perf_counter()
        task = asyncio.create_task(produce(server, count))
        await asyncio.wait_for(done.wait(), 60)
        elapsed = time.perf_counter() - t0
        await task
        await sub.delete()
    return count / elapsed, _lost(seen, count)


async def ours_run(server: OpcUaServer, count: int) -> tuple[float, int]:
    seen: list[int] = []
    async with OpcUaTransport(server.url, device="bench") as t, t.subscribe([PATH], 0.01) as sub:
        await anext(sub)  # initial value
        t0 = time.perf_counter()
        task = asyncio.create_task(produce(server, count))
        async for change in sub:
            seen.append(change.value)
            if change.value == count:
                break
        elapsed = time.perf_counter() - t0
        await task
    return count / elapsed, _lost(seen, count)


def _lost(seen: list[int], count: int) -> int:
    """Notifications missing (or, if none is missing, 1 for any disorder)."""
    got = [v for v in seen if v > 0]
    if got == list(range(1, count + 1)):
        return 0
    return max(1, count - len(set(got)))


async def main(count: int) -> None:
    logging.basicConfig(level=logging.ERROR)
    results: dict[str, list[float]] = {"raw": [], "cellauto": []}
    async with OpcUaServer([Obj("Dev", [Var("Seq", "UInt32", 0)])]) as server:
        for _ in range(ROUNDS):  # interleaved, medians: this VM is noisy
            for name, run in (("raw", raw_run), ("cellauto", ours_run)):
                await server.set(PATH, 0)
                r, lost = await run(server, count)
                results[name].append(r)
                if lost:
                    print(f"{name}: LOST {lost} of {count}")
    raw_best, ours_best = statistics.median(results["raw"]), statistics.median(results["cellauto"])
    print(f"raw asyncua handler      : {raw_best:8.0f} notifications/s (median of {ROUNDS})")
    print(f"OpcUaTransport.subscribe : {ours_best:8.0f} notifications/s (median of {ROUNDS})")
    ratio = ours_best / raw_best
    print(f"ratio                    : {ratio:.2f}  (target >= 0.80), zero loss checked")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
