"""`Device.read` through the Cocoon adapter vs a raw asyncua client reading the same node.

Run: .venv/bin/python benchmarks/device_read.py [seconds]. The Cocoon simulator serves its OPC UA
address space in this process; one raw asyncua `Client` and the cellauto adapter (Device.read:
channel check, timeout, the transport, a Sample model) read chamber.temperature sequentially,
interleaved in rounds. Prints both rates and the ratio (issue target: >= 0.8).
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

from asyncua.client.client import Client

import cellauto
from cellauto.profiles import load_profile
from cellauto.registry import load_simulator, parse_url


async def rate(read: Callable[[], Awaitable[object]], seconds: float) -> float:
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(50):
            await read()
        n += 50
    return n / seconds


async def main(seconds: float) -> None:
    logging.basicConfig(level=logging.ERROR)
    simulator = await load_simulator("cocoon")(load_profile("cocoon"), {"speed": "1", "seed": "1"})
    cocoon = await cellauto.connect(simulator.url)
    try:
        async with Client("opc.tcp://" + parse_url(simulator.url).address) as raw:
            ns = await raw.get_namespace_index("urn:cellauto:cocoon:v1")
            node = await raw.nodes.objects.get_child(
                [f"{ns}:Cocoon", f"{ns}:Chamber", f"{ns}:Temperature"]
            )
            ours, theirs = [], []
            for _ in range(5):
                theirs.append(await rate(node.read_value, seconds / 10))
                ours.append(await rate(lambda: cocoon.read("chamber.temperature"), seconds / 10))
    finally:
        await cocoon.close()
        await simulator.stop()
    raw_rate, our_rate = statistics.median(theirs), statistics.median(ours)
    print(f"raw asyncua read      {raw_rate:8.0f} /s")
    print(f"cellauto Device.read  {our_rate:8.0f} /s")
    print(f"ratio                 {our_rate / raw_rate:8.2f}  (target >= 0.8)")


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 10.0))
