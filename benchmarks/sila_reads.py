"""Property reads through the generic SiLA 2 adapter against the raw `sila2` client, on the same
LiCellGrow simulator, in one run. Prints reads per second and the ratio (issue 17: >= 0.8).
Not like for like: the library's `get()` of an observable property opens a subscription for each
read, while the adapter answers a read from the subscription it holds (the newest value the
server sent is its current value). Subscription updates are not measured here yet.

    .venv/bin/python benchmarks/sila_reads.py [reads]
"""

from __future__ import annotations

import asyncio
import sys
import time
from urllib.parse import urlparse

from sila2.client import SilaClient

from cellauto.profiles import load_profile
from cellauto.registry import connect
from cellauto_simulators.licellgrow import LiCellGrowSimulator

CHANNEL, PROPERTY = "metabolite_sensor.glucose", "MetaboliteSensorGlucose"


async def main(reads: int) -> None:
    sim = await LiCellGrowSimulator.launch(
        load_profile("licellgrow"), {"insecure": "1"}, default_speed="max"
    )
    try:
        url = urlparse(sim.url)
        device = await connect(sim.url, time=sim.time)
        raw = SilaClient(url.hostname or "", url.port or 0, insecure=True)
        prop = getattr(raw.LicellgrowChannels, PROPERTY)
        try:
            for _ in range(20):  # warm both up
                prop.get()
                await device.read(CHANNEL)
            start = time.perf_counter()
            for _ in range(reads):
                await asyncio.to_thread(prop.get)
            raw_rate = reads / (time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(reads):
                await device.read(CHANNEL)
            adapter_rate = reads / (time.perf_counter() - start)
        finally:
            raw.close()
            await device.close()
    finally:
        await sim.stop()
    print(f"raw sila2 client (in a worker thread, as the adapter): {raw_rate:8.0f} reads/s")
    print(f"cellauto generic SiLA adapter:                        {adapter_rate:8.0f} reads/s")
    print(f"ratio adapter/raw: {adapter_rate / raw_rate:.2f} (target >= 0.8)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
