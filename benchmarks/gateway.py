"""The LADS gateway against an asyncua server serving the same variables directly, in one run.

Run: .venv/bin/python benchmarks/gateway.py. Devices are MockDevices with the Prodigy profile, so
what is measured is the gateway, not a simulator. Reports:

- reads: one client reading every value variable of a device, through the gateway and directly
  (target: ratio >= 0.5);
- subscriptions: time from a sample's arrival (gateway) / a value write (direct) to the client's
  data-change notification, p50/p99, and the gateway's added p99 (target < 50 ms), and whether
  every change arrived;
- capacity: samples per second the gateway turns into node updates, and from it how many
  Prodigy-sized devices (24 channels at 1 sample/s) one gateway serves in real time.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from asyncua import ua
from asyncua.client.client import Client
from asyncua.server.server import Server

import cellauto
from cellauto.gateway import serve_lads
from cellauto.lads._ua import nid
from cellauto.mock import MockDevice

READS = 200
CHANGES = 300
PUBLISH_MS = 10


def value_ids(device: cellauto.Device) -> list[str]:
    ids = []
    for unit in device.profile.functional_units:
        for channel in unit.channels:
            var = "SensorValue" if channel.kind == "sensor" else "TargetValue"
            ids.append(f"{device.device_id}.{unit.name}.{channel.name}.{var}")
    return ids


def initial(device: MockDevice) -> None:
    for name, channel in device.profile.channels().items():
        value: float | bool | str = 1.0
        if channel.dtype == "bool":
            value = True
        elif channel.dtype == "str":
            value = (channel.choices or ["x"])[0]
        device.inject_sample(name, value)


async def direct_server(count: int) -> tuple[Server, str, list[ua.NodeId]]:
    server = Server()
    await server.init()
    server.set_endpoint("opc.tcp://127.0.0.1:0")
    idx = await server.register_namespace("urn:bench:direct")
    folder = await server.nodes.objects.add_object(idx, "Direct")
    nodes = [
        (await folder.add_variable(idx, f"v{i}", ua.Variant(1.0, ua.VariantType.Double))).nodeid
        for i in range(count)
    ]
    await server.start()
    assert server.bserver is not None
    return server, f"opc.tcp://127.0.0.1:{server.bserver.port}", nodes


async def read_rate(url: str, ids: list[ua.NodeId]) -> float:
    async with Client(url) as client:
        nodes = [client.get_node(i) for i in ids]
        await client.read_values(nodes)
        started = time.perf_counter()
        for _ in range(READS):
            await client.read_values(nodes)
        return READS * len(nodes) / (time.perf_counter() - started)


class Latencies:
    def __init__(self) -> None:
        self.sent: dict[float, float] = {}
        self.got: list[float] = []
        self.waiter: asyncio.Queue[float] = asyncio.Queue()

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        if val in self.sent:
            self.got.append(time.perf_counter() - self.sent.pop(val))
            self.waiter.put_nowait(val)


async def latency(url: str, node_id: ua.NodeId, change: Any) -> Latencies:
    found = Latencies()
    async with Client(url) as client:
        subscription = await client.create_subscription(PUBLISH_MS, found)
        await subscription.subscribe_data_change(client.get_node(node_id))
        await asyncio.sleep(0.2)  # let the initial notification pass
        for i in range(CHANGES):
            value = 1000.0 + i
            found.sent[value] = time.perf_counter()
            await change(value)
            await asyncio.wait_for(found.waiter.get(), 5)
        await subscription.delete()
    return found


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


async def capacity(gateway_url: str, device: MockDevice, gw_ids: list[ua.NodeId]) -> float:
    rounds = 50
    channels = list(device.profile.channels())
    last = gw_ids[0]
    done = asyncio.Event()

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            if val == -1.0:
                done.set()

    async with Client(gateway_url) as client:
        subscription = await client.create_subscription(PUBLISH_MS, Handler())
        await subscription.subscribe_data_change(client.get_node(last))
        started = time.perf_counter()
        for r in range(rounds):
            initial(device)
            if r % 5 == 0:
                await asyncio.sleep(0)
        device.inject_sample(channels[0], -1.0)
        await asyncio.wait_for(done.wait(), 60)
        elapsed = time.perf_counter() - started
        await subscription.delete()
    return (rounds * len(channels) + 1) / elapsed


async def main() -> None:
    logging.disable(logging.WARNING)
    device = await cellauto.connect("prodigy+sim://", device_id="bench-1", mock=True)
    assert isinstance(device, MockDevice)
    initial(device)
    with tempfile.TemporaryDirectory() as state:
        started = time.perf_counter()
        gateway = serve_lads([device], state=Path(state), port=0, allow_unsecured_read=True)
        async with gateway:
            startup = time.perf_counter() - started
            ns = await gateway.server.get_namespace_index("urn:cellauto:gateway")
            gw_ids = [nid(i, ns) for i in value_ids(device)]
            server, direct_url, direct_ids = await direct_server(len(gw_ids))
            try:
                gw_rate = await read_rate(gateway.url, gw_ids)
                direct_rate = await read_rate(direct_url, direct_ids)
                channel = "chamber.temperature"

                async def via_gateway(value: float) -> None:
                    device.inject_sample(channel, value)

                async def via_direct(value: float) -> None:
                    await server.write_attribute_value(
                        direct_ids[0], ua.DataValue(ua.Variant(value, ua.VariantType.Double))
                    )

                temp_id = nid(f"bench-1.{channel}.SensorValue", ns)
                gw_lat = await latency(gateway.url, temp_id, via_gateway)
                direct_lat = await latency(direct_url, direct_ids[0], via_direct)
                rate = await capacity(gateway.url, device, [temp_id])
            finally:
                await server.stop()
    await device.close()
    per_device = len(gw_ids)  # one sample per channel per second
    print(f"gateway start-up (nodesets + 1 device): {startup:.1f} s")
    print(
        f"reads: gateway {gw_rate:,.0f} values/s, direct {direct_rate:,.0f} values/s, "
        f"ratio {gw_rate / direct_rate:.2f} (target >= 0.5)"
    )
    print(
        f"subscription latency (publishing {PUBLISH_MS} ms): gateway p50 "
        f"{pct(gw_lat.got, 0.5):.1f} ms p99 {pct(gw_lat.got, 0.99):.1f} ms; direct p50 "
        f"{pct(direct_lat.got, 0.5):.1f} ms p99 {pct(direct_lat.got, 0.99):.1f} ms; added p99 "
        f"{pct(gw_lat.got, 0.99) - pct(direct_lat.got, 0.99):.1f} ms (target < 50 ms); "
        f"delivered {len(gw_lat.got)}/{CHANGES} and {len(direct_lat.got)}/{CHANGES}"
    )
    print(
        f"capacity: {rate:,.0f} samples/s into nodes; a Prodigy-sized device ({per_device} "
        f"channels at 1 Hz) -> about {int(rate / per_device)} devices in real time "
        f"(median direct latency {statistics.median(direct_lat.got) * 1000:.1f} ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
