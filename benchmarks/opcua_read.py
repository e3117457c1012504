"""Sequential `read` through OpcUaTransport vs a raw asyncua client on the same node.

Run: .venv/bin/python benchmarks/opcua_read.py [seconds]. Server and clients share one process
and event loop (as an in-process simulator does), so absolute rates are lower than with a
server in its own process; the ratio is the figure of merit (target >= 0.8).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import time

from asyncua.client.client import Client

from cellauto.sim.servers.opcua import Obj, OpcUaServer, Var
from cellauto.transport.opcua import OpcUaTransport

PATH = "2:Dev/2:Temperature"


async def rate(read: object, seconds: float) -> float:
    fn = read  # an async callable
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(100):
            await fn()  # type: ignore[operator]
        n += 100
    return n / seconds


async def main(seconds: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    server = OpcUaServer([Obj("Dev", [Var("Temperature", "Double", 37.0)])])
    async with (
        server,
        Client(server.url) as raw,
        OpcUaTransport(server.url, device="bench") as t,
    ):
        node = await raw.nodes.objects.get_child(["2:Dev", "2:Temperature"])
        await t.read(PATH)
        results: dict[str, list[float]] = {"raw": [], "cellauto": []}
        for _ in range(7):  # interleaved, medians: this VM is noisy
            results["raw"].append(await rate(node.read_value, seconds))
            results["cellauto"].append(await rate(lambda: t.read(PATH), seconds))
    raw_best, ours_best = statistics.median(results["raw"]), statistics.median(results["cellauto"])
    print(f"raw asyncua read_value : {raw_best:8.0f} reads/s  (median of 7)")
    print(f"OpcUaTransport.read    : {ours_best:8.0f} reads/s  (median of 7)")
    print(f"ratio                  : {ours_best / raw_best:.2f}  (target >= 0.80)")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 2.0))
