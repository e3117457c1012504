"""ModbusTransport against a real pymodbus server on loopback: every register type, grouped
reads, every exception code, unit id, pacing, write read-back, timeouts and reconnects."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cellauto.errors import (
    ConnectionLost,
    DeviceTimeout,
    ModbusDeviceBusy,
    ModbusError,
    ModbusIllegalAddress,
    ModbusValueError,
    ModbusWriteNotConfirmed,
)
from cellauto.transport.modbus import (
    EXCEPTION_ERRORS,
    LinkSettings,
    ModbusTransport,
    PymodbusLink,
    RegisterMap,
)
from cellauto.transport.stream import Backoff

from .conftest import link_to
from .server import MapServer

pytestmark = pytest.mark.timeout(30)

SETPOINTS: dict[str, Any] = {
    "sp.i16": -1234,
    "sp.u16": 65000,
    "sp.i32": -2_000_000_000,
    "sp.u32_little": 4_000_000_000,
    "sp.f32": 36.5,
    "sp.scaled": 37.2,
    "sp.label": "ACC 200",
    "sp.clamped": 7,
}


async def test_every_holding_type_writes_reads_back_and_reads(
    plc: ModbusTransport, server: MapServer
) -> None:
    await plc.write(SETPOINTS)
    values = await plc.read("sp.*")
    assert values == pytest.approx(SETPOINTS)
    # the wire image is the documented one: sp.u32_little puts the low word first
    assert await server.get_raw("sp.u32_little") == [0x2800, 0xEE6B]
    assert await server.get_raw("sp.scaled") == [472]  # (37.2 - -10) / 0.1


async def test_input_registers_blocks_coils_and_discrete_inputs(
    plc: ModbusTransport, server: MapServer
) -> None:
    await server.set("pv.f32_little", -3.25)
    await server.set("vessel3.volume", 12.5)
    await server.set("vessel3.state", 2)
    await server.set("alarm.pressure", True)
    values = await plc.read("pv.f32_little", "vessel3.*", "alarm.*")
    assert values == {
        "pv.f32_little": -3.25,
        "vessel3.volume": 12.5,
        "vessel3.state": 2,
        "alarm.leak": False,
        "alarm.pressure": True,
    }
    await plc.write({"cmd.lamp": True})
    assert await server.get_words("coils", 1, 1) == [1]
    assert await plc.read_value("cmd.lamp") is True


async def test_reads_are_grouped_into_few_requests(plc: ModbusTransport, server: MapServer) -> None:
    server.requests.clear()
    await plc.read("sp.*", "alarm.*")
    # (the server's store counts bits in 16-bit words: one word holds both alarm bits)
    assert server.requests == [("read", "holding", 0, 15), ("read", "discrete", 0, 1)]


@pytest.mark.parametrize("code", sorted(EXCEPTION_ERRORS))
async def test_every_exception_code_is_a_typed_error_naming_device_operation_and_unit(
    plc: ModbusTransport, server: MapServer, code: int
) -> None:
    server.faults[("holding", 1)] = code
    with pytest.raises(EXCEPTION_ERRORS[code]) as info:
        await plc.read("sp.u16")
    error = info.value
    assert (error.code, error.unit, error.table, error.address) == (code, 7, "holding", 1)
    assert str(error).startswith("testplc: read sp.u16: Modbus exception")
    assert error.hint


async def test_an_unmapped_address_is_the_servers_own_illegal_address(
    plc: ModbusTransport,
) -> None:
    with pytest.raises(ModbusIllegalAddress, match="at input 50"):
        await plc.link.read("input", 50, 2, operation="read beyond the map")


async def test_busy_is_retried_then_raised(plc: ModbusTransport, server: MapServer) -> None:
    await server.set("sp.u16", 5)
    server.faults[("holding", 1)] = 6
    server.fault_count[("holding", 1)] = 2  # busy_retries = 2 in the map
    assert await plc.read_value("sp.u16") == 5
    server.fault_count[("holding", 1)] = 3
    with pytest.raises(ModbusDeviceBusy):
        await plc.read_value("sp.u16")


async def test_requests_carry_the_unit_id(server: MapServer, regmap: RegisterMap) -> None:
    async with ModbusTransport(regmap, link_to(server, unit_id=3)) as wrong:
        with pytest.raises(ModbusError) as info:
            await wrong.read("sp.u16")
        assert info.value.unit == 3


async def test_requests_are_paced_by_the_maps_min_interval(server: MapServer) -> None:
    clock = [100.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(round(seconds, 9))
        clock[0] += seconds

    settings = server.map.link.model_copy(update={"min_interval": 0.25})
    link = link_to(server, settings, now=lambda: clock[0], sleep=sleep)
    async with ModbusTransport(server.map, link) as plc:
        await plc.read("sp.u16")
        clock[0] += 0.1  # the caller did something else for 0.1 s
        await plc.read("pv.f32_little", "alarm.leak")  # two requests
    assert waits == [0.15, 0.25]
    assert link.requests == 3


async def test_a_write_the_device_does_not_keep_is_not_confirmed(
    plc: ModbusTransport, server: MapServer
) -> None:
    async def clamp(table: str, address: int, words: list[int]) -> None:
        if table == "holding" and address <= 14 < address + len(words):
            written = (await server.get_raw("sp.clamped"))[0]
            await server.set("sp.clamped", min(written, 100))

    server.on_write.append(clamp)
    await plc.write({"sp.clamped": 50})
    with pytest.raises(ModbusWriteNotConfirmed) as info:
        await plc.write({"sp.clamped": 150})
    assert (info.value.register, info.value.written, info.value.read_back) == (
        "sp.clamped",
        150,
        100,
    )
    assert "wrote 150 to sp.clamped, read back 100" in str(info.value)


async def test_bad_values_and_names_are_typed_errors(plc: ModbusTransport) -> None:
    with pytest.raises(ModbusValueError, match=r"testplc: write sp.u16: register sp.u16"):
        await plc.write({"sp.u16": -1})
    with pytest.raises(ModbusValueError, match="read-only"):
        await plc.write({"pv.f32": 1.0})
    with pytest.raises(ModbusValueError, match=r"no entry 'sp.nope'"):
        await plc.read("sp.nope")


async def test_a_request_without_answer_times_out(server: MapServer) -> None:
    release = asyncio.Event()

    async def stall(_: MapServer) -> None:
        await release.wait()

    settings = server.map.link.model_copy(update={"timeout": 0.2})
    async with ModbusTransport(server.map, link_to(server, settings)) as plc:
        server.scans.append(stall)
        try:
            with pytest.raises(DeviceTimeout, match=r"testplc: read sp.u16: no answer"):
                await plc.read("sp.u16")
        finally:
            release.set()


async def test_a_dropped_link_reconnects_and_the_read_is_retried(server: MapServer) -> None:
    link = link_to(server)
    events = link.events()
    async with ModbusTransport(server.map, link) as plc:
        assert (await anext(events)).state == "connected"
        await server.set("sp.u16", 42)
        await server.stop()
        read = asyncio.create_task(plc.read_value("sp.u16"))
        assert (await anext(events)).state == "reconnecting"
        await server.restart()
        assert await read == 42
        states = [(await anext(events)).state for _ in range(2)]
        assert states[-1] == "connected"


async def test_reconnecting_gives_up_after_the_backoff(server: MapServer) -> None:
    link = PymodbusLink(
        "127.0.0.1",
        server.port,
        device="testplc",
        settings=server.map.link,
        backoff=Backoff(initial=0.001, max_attempts=2, seed=1),
    )
    async with ModbusTransport(server.map, link) as plc:
        await server.stop()
        with pytest.raises(ConnectionLost, match="could not reconnect"):
            await plc.read("sp.u16")


async def test_connecting_to_nothing_is_connection_lost(regmap: RegisterMap) -> None:
    link = PymodbusLink("127.0.0.1", 1, device="testplc", settings=LinkSettings(timeout=0.2))
    with pytest.raises(ConnectionLost, match=r"no Modbus TCP server at 127.0.0.1:1"):
        await link.open()
