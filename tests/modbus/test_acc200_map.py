"""The ACC-200 register map: valid, rendered into its protocol profile, in step with the device
profile, and readable by a plain pymodbus client at the documented addresses."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusTcpClient

from cellauto import load_profile
from cellauto.resources import schemas_dir
from cellauto.transport.modbus import ModbusTransport, PymodbusLink, RegisterMap, load_register_map
from cellauto.transport.modbus.render import main as render_main
from cellauto.transport.modbus.render import render_tables, splice

from .server import MapServer

MAP = schemas_dir() / "protocols" / "acc200.toml"


@pytest.fixture(scope="module")
def acc200() -> RegisterMap:
    return load_register_map("acc200")  # the shipped map, by device name


def test_the_protocol_profile_tables_are_current(acc200: RegisterMap) -> None:
    document = MAP.with_suffix(".md").read_text(encoding="utf-8")
    # if stale: python -m cellauto.transport.modbus.render schemas/protocols/acc200.toml
    assert splice(document, render_tables(acc200)) == document
    assert render_main(["--check", str(MAP)]) == 0


def test_a_stale_document_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "acc200.toml").write_text(MAP.read_text(encoding="utf-8"), encoding="utf-8")
    stale = MAP.with_suffix(".md").read_text(encoding="utf-8").replace("| 100 |", "| 101 |", 1)
    (tmp_path / "acc200.md").write_text(stale, encoding="utf-8")
    assert render_main(["--check", str(tmp_path / "acc200.toml")]) == 1
    assert "stale" in capsys.readouterr().err
    assert render_main([str(tmp_path / "acc200.toml")]) == 0
    assert (tmp_path / "acc200.md").read_text(encoding="utf-8") == MAP.with_suffix(".md").read_text(
        encoding="utf-8"
    )


def test_every_profile_channel_has_an_entry_with_its_unit_or_choices(acc200: RegisterMap) -> None:
    profile = load_profile("acc200")
    for name, channel in profile.channels().items():
        entry = acc200.entry(name)
        if channel.dtype == "str":
            assert list(entry.register.states.values()) == channel.choices, name
        elif channel.dtype == "bool":
            assert entry.register.type == "bool", name
        else:
            assert entry.register.unit == channel.unit, name
        if channel.writable:
            assert entry.table == "holding", name


def test_alarm_bits_and_command_coils_match_the_profile(acc200: RegisterMap) -> None:
    profile = load_profile("acc200")
    bits = {r.alarm for r in acc200.discrete if r.alarm}
    assert bits == {a.code for a in profile.alarms}
    coils = {e.name for e in acc200.entries.values() if e.table == "coils"}
    by_other_means = {"load_recipe": "recipe.commit", "acknowledge_prompt": "prompt.submit"}
    for command in profile.commands:
        assert by_other_means.get(command.name, f"cmd.{command.name}") in coils


async def test_a_plain_pymodbus_client_reads_the_temperature_at_the_documented_address(
    acc200: RegisterMap,
) -> None:
    server = await MapServer(acc200).start()
    try:
        await server.set("incubator.temperature", 37.0)
        client = AsyncModbusTcpClient("127.0.0.1", port=server.port)
        await client.connect()
        try:
            reply = await client.read_input_registers(100, count=2, device_id=1)
        finally:
            client.close()
        high, low = reply.registers
        assert struct.unpack(">f", struct.pack(">HH", high, low))[0] == 37.0
    finally:
        await server.stop()


async def test_setpoints_status_and_all_ten_vessels_through_the_transport(
    acc200: RegisterMap,
) -> None:
    server = await MapServer(acc200).start()
    try:
        for i in range(1, 11):
            await server.set(f"vessel{i}.confluency", 10.0 * i)
        await server.set("device.state", 4)
        settings = acc200.link.model_copy(update={"min_interval": 0.0})
        link = PymodbusLink("127.0.0.1", server.port, device="acc200", settings=settings)
        async with ModbusTransport(acc200, link) as plc:
            await plc.write({"incubator.temperature_setpoint": 37.0})
            server.requests.clear()
            vessels = await plc.read("vessel*.confluency")
            assert vessels == {f"vessel{i}.confluency": 10.0 * i for i in range(1, 11)}
            # two reads of at most 120 registers, the first with vessels.seq; vessels.seq again
            assert [r[2:] for r in server.requests] == [(999, 119), (1132, 18), (999, 1)]
            status = await plc.read("device.state", "program.*")
            assert status["device.state"] == 4
    finally:
        await server.stop()
