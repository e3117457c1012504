"""The generic SiLA 2 adapter against the raw `sila2` client doing the same work on the same
server, in one run (issue 17: each ratio >= 0.8).

- reads: a property read on demand, one unary Get call to the server each (an unobservable Real
  property with a unit constraint; the adapter answers observable ones from its subscription, so
  those reads would not be the same work);
- updates: values of an observable property subscription, from the server's publication to the
  application (the raw client's callback; the adapter's `subscribe()` feed as Samples).

The server is a plain `sila2` server with one test feature (cellauto's FDL helpers write it);
both clients call from worker threads as the library demands. Prints median rates (reads: of 20
alternating bursts; updates: of three alternating rounds) and their ratios.

    .venv/bin/python benchmarks/sila_adapter.py [reads] [updates]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from queue import Queue
from typing import Any

from sila2.client import SilaClient
from sila2.framework import Feature as SilaFeature
from sila2.server import FeatureImplementationBase

from cellauto.registry import connect
from cellauto.sila.fdl import Feature, Property, with_unit
from cellauto.sila.server import free_port, new_sila_server

ROUNDS = 3
BURSTS = 20

PROBE = Feature(
    "Probe",
    "A probe for the benchmark.",
    originator="org.example",
    category="benchmarks",
    properties=(
        Property("Level", "Published as fast as the server can.", with_unit("Cel")),
        Property("Setpoint", "Read on demand.", with_unit("Cel"), False),
    ),
)


def start_server() -> tuple[Any, Queue[Any], int]:
    server = new_sila_server(
        server_name="Probe",
        server_type="BenchmarkProbe",
        server_description="benchmark",
        server_version="1.0",
        server_vendor_url="https://example.org",
    )
    queue: Queue[Any] = Queue()
    impl = FeatureImplementationBase(server)
    impl._Level_producer_queue = queue  # type: ignore[attr-defined]
    impl.Level_on_subscription = lambda *, metadata: None  # type: ignore[attr-defined]
    impl.get_Setpoint = lambda *, metadata: 37.0  # type: ignore[attr-defined]
    server.set_feature_implementation(SilaFeature(PROBE.xml()), impl)
    port = free_port()
    queue.put(0.0)
    server.start_insecure("127.0.0.1", port, enable_discovery=False)
    return server, queue, port


async def raw_reads(client: Any, reads: int) -> float:
    get = client.Probe.Setpoint.get
    start = time.perf_counter()
    for _ in range(reads):
        await asyncio.to_thread(get)
    return reads / (time.perf_counter() - start)


async def adapter_reads(device: Any, reads: int) -> float:
    start = time.perf_counter()
    for _ in range(reads):
        await device.read("probe.setpoint")
    return reads / (time.perf_counter() - start)


def publish(queue: Queue[Any], first: float, count: int) -> None:
    for i in range(count):
        queue.put(first + i + 1)


async def raw_updates(client: Any, queue: Queue[Any], first: float, count: int) -> float:
    """Iterating the subscription in a thread: the raw client's fastest way (its callbacks go
    through a thread pool, one task per value)."""
    last = first + count
    subscription = client.Probe.Level.subscribe()
    queue.put(first)  # the current value again: the stream is live once it arrives

    def until(value: float) -> None:
        for item in subscription:
            if item == value:
                return

    await asyncio.to_thread(until, first)
    start = time.perf_counter()
    publish(queue, first, count)
    await asyncio.to_thread(until, last)
    rate = count / (time.perf_counter() - start)
    subscription.cancel()
    return rate


async def adapter_updates(device: Any, queue: Queue[Any], first: float, count: int) -> float:
    last = first + count
    feed = device.subscribe(["probe.level"])
    queue.put(first)  # the current value again: the feed is live once it arrives
    async for sample in feed:
        if sample.value == first:
            break
    start = time.perf_counter()
    publish(queue, first, count)
    async for sample in feed:
        if sample.value == last:
            break
    rate = count / (time.perf_counter() - start)
    feed.close()
    return rate


async def main(reads: int, updates: int) -> None:
    server, queue, port = await asyncio.to_thread(start_server)
    try:
        raw = await asyncio.to_thread(SilaClient, "127.0.0.1", port, insecure=True)
        device = await connect(f"sila+grpc://127.0.0.1:{port}?insecure=1")
        try:
            await raw_reads(raw, 20)  # warm both up
            await adapter_reads(device, 20)
            rates: dict[str, list[float]] = {k: [] for k in ("rr", "ar", "ru", "au")}
            burst = max(1, reads // BURSTS)
            for _ in range(BURSTS):  # short alternating bursts: load on the machine hits both
                rates["rr"].append(await raw_reads(raw, burst))
                rates["ar"].append(await adapter_reads(device, burst))
            for round_ in range(ROUNDS):
                base = 1e6 * (round_ + 1)
                rates["ru"].append(await raw_updates(raw, queue, base, updates))
                rates["au"].append(await adapter_updates(device, queue, base + 5e5, updates))
            read_raw, read_adapter, update_raw, update_adapter = (
                statistics.median(rates[k]) for k in ("rr", "ar", "ru", "au")
            )
        finally:
            raw.close()
            await device.close()
    finally:
        await asyncio.to_thread(server.stop, 0.5)
    print(
        f"reads   raw sila2 client: {read_raw:8.0f}/s  adapter: {read_adapter:8.0f}/s  "
        f"ratio {read_adapter / read_raw:.2f} (target >= 0.8)"
    )
    print(
        f"updates raw sila2 client: {update_raw:8.0f}/s  adapter: {update_adapter:8.0f}/s  "
        f"ratio {update_adapter / update_raw:.2f} (target >= 0.8)"
    )


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(args + [500, 2000][len(args) :])))
