"""A register the simulated PLC updates between any two requests: read whole (one request, as
the adapter and the Modbus family always do) it is always a value the device held; read in two
requests by a plain client it tears; split under the family's sequence-register rule the change
is detected instead of returned."""

from __future__ import annotations

import struct

import pytest
from pymodbus.client import AsyncModbusTcpClient

from cellauto.errors import ModbusInconsistentRead
from cellauto.registry import connect
from cellauto.sim import start_simulator
from cellauto.transport.modbus import ModbusTransport, PymodbusLink, load_register_map

VALUES = [1.0, -2.5e9]  # float32 words 3F80 0000 and CF15 02F9: every mix differs from both


async def test_a_value_read_in_two_requests_tears_and_the_rule_catches_it() -> None:
    sim = await start_simulator("acc200", seed=6)
    try:
        sim.device.tear("vessels.total_cells", VALUES)  # type: ignore[attr-defined]
        device = await connect(sim.url + "?heartbeat=0", device_id="iace-t", time=sim.time)
        try:
            for _ in range(6):
                assert (await device.read("vessels.total_cells")).value in VALUES
        finally:
            await device.close()

        port = int(sim.url.rsplit(":", 1)[1])
        plain = AsyncModbusTcpClient("127.0.0.1", port=port)
        await plain.connect()
        try:
            high = (await plain.read_input_registers(133, count=1, device_id=1)).registers[0]
            low = (await plain.read_input_registers(134, count=1, device_id=1)).registers[0]
        finally:
            plain.close()
        torn = struct.unpack(">f", struct.pack(">HH", high, low))[0]
        assert torn not in VALUES

        regmap = load_register_map("acc200")
        link = PymodbusLink("127.0.0.1", port, device="iace-t", settings=regmap.link)
        async with ModbusTransport(regmap, link, max_count=1) as split:
            with pytest.raises(ModbusInconsistentRead, match="iace-t"):
                await split.read("vessels.total_cells")
    finally:
        await sim.stop()
