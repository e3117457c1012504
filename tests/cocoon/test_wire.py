"""Adapter and simulator on one loopback OPC UA endpoint: identity, every channel, commands,
errors; and a plain asyncua client on the simulator. One simulator for the module."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asyncua import Client
from cocoon_support import PROFILE, adapter_for

from cellauto.errors import CommandRejected, InvalidTransition
from cellauto.schema import Quality, Quantity
from cellauto.schema.quantity import Q
from cellauto.state import IDLE
from cellauto_adapters.cocoon import CocoonAdapter
from cellauto_simulators.cocoon import CocoonSimulator, start_simulator

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sim() -> AsyncIterator[CocoonSimulator]:
    simulator = await start_simulator(PROFILE, {"speed": "max", "seed": "3"})
    yield simulator
    await simulator.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def cocoon(sim: CocoonSimulator) -> AsyncIterator[CocoonAdapter]:
    device = adapter_for(sim)
    await device.connect()
    yield device
    await device.close()


async def test_a_plain_asyncua_client_browses_and_reads_a_temperature(sim: CocoonSimulator) -> None:
    url = sim.url.replace("cocoon+opcua://", "opc.tcp://")
    async with Client(url) as client:
        ns = await client.get_namespace_index("urn:cellauto:cocoon:v1")
        root = await client.nodes.objects.get_child(f"{ns}:Cocoon")
        names = {(await child.read_browse_name()).Name for child in await root.get_children()}
        assert {"Identification", "Status", "Chamber", "ColdZone", "Fluidics", "Cassette"} <= names
        temperature = await root.get_child([f"{ns}:Chamber", f"{ns}:Temperature"])
        assert 36.0 < await temperature.read_value() < 38.0


async def test_connect_reads_identity_and_state(cocoon: CocoonAdapter) -> None:
    assert cocoon.info.serial_number == "SIM0003"
    assert cocoon.info.vendor_data["namespace"] == "urn:cellauto:cocoon:v1"
    assert cocoon.state == IDLE


async def test_every_channel_reads_with_its_profile_type_and_unit(cocoon: CocoonAdapter) -> None:
    for name, channel in PROFILE.channels().items():
        sample = await cocoon.read(name)
        assert sample.channel == name
        assert sample.unit == channel.unit
        assert type(sample.value).__name__ == channel.dtype, name
        assert sample.quality is Quality.GOOD
        assert sample.timestamp.tzinfo is not None
        if channel.choices and sample.value:
            assert sample.value in channel.choices


async def test_the_subscription_delivers_every_channel(sim: CocoonSimulator) -> None:
    device = adapter_for(sim)
    feed = device.subscribe()
    await device.connect()
    wanted = set(PROFILE.channels())
    seen: set[str] = set()

    async def collect() -> None:
        async for sample in feed:
            seen.add(sample.channel)
            if seen == wanted:
                return

    try:
        await collect()  # no wall-clock bound: the suite's timeout is
    finally:
        await device.close()


async def test_samples_of_a_channel_follow_its_sample_period(cocoon: CocoonAdapter) -> None:
    feed = cocoon.subscribe(["chamber.temperature"])
    stamps = [(await anext(feed)).timestamp for _ in range(4)]
    feed.close()
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(stamps)}
    assert gaps == {10.0}


async def test_set_setpoints_writes_the_control_channels(cocoon: CocoonAdapter) -> None:
    result = await cocoon.command("set_setpoints", chamber_temperature=Q(36.5, "Cel"))
    assert result.accepted
    assert (await cocoon.read("chamber.temperature_setpoint")).value == 36.5
    await cocoon.command("set_setpoints", chamber_temperature=Q(37, "Cel"))
    with pytest.raises(CommandRejected, match="cocoon-1: set_setpoints"):
        await cocoon.command("set_setpoints", cold_zone_temperature=Q(12, "Cel"))


async def test_take_sample_draws_from_the_chamber_only_when_there_is_culture(
    cocoon: CocoonAdapter,
) -> None:
    with pytest.raises(CommandRejected, match=r"cocoon-1: take_sample: .*BadInvalidState"):
        await cocoon.command("take_sample", volume=Q(1, "mL"))


async def test_cassette_and_protocol_commands(cocoon: CocoonAdapter) -> None:
    with pytest.raises(CommandRejected, match=r"check_cassette.*BadResourceUnavailable"):
        await cocoon.command("check_cassette")
    loaded = await cocoon.command("load_protocol", protocol="CAR-T", process="car_t")
    assert loaded.data["content_hash"] == PROFILE.program("CAR-T").content_hash
    validated = await cocoon.command("validate_protocol")
    assert validated.accepted  # CAR-T seats its own cassette: Start would succeed
    assert validated.data["problems"] == []
    assert (await cocoon.command("release_cassette")).accepted


async def test_errors_name_the_device_the_state_and_the_operation(cocoon: CocoonAdapter) -> None:
    with pytest.raises(
        InvalidTransition, match="cocoon-1: hold: not allowed in state Running/Idle"
    ):
        await cocoon.hold()
    with pytest.raises(CommandRejected, match=r"cocoon-1: acknowledge_prompt: .*BadNotFound"):
        await cocoon.command("acknowledge_prompt", prompt_id="nope")
    with pytest.raises(CommandRejected, match="no channel"):
        await cocoon.read("chamber.nope")
    assert isinstance(PROFILE.program("CAR-T").parameter("moi").default, float | int)
    assert Quantity(value=1, unit="mL").unit == "mL"
