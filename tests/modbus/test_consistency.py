"""What a PLC demands: no torn multi-register reads, consistent groups read under their
sequence register, event rings read back after a reconnect, recipe downloads with a CRC."""

from __future__ import annotations

import random
import struct

import pytest

from cellauto.errors import ModbusInconsistentRead, RecipeDownloadError
from cellauto.transport.modbus import ModbusTransport, RegisterMap, recipe_crc

from .conftest import link_to
from .server import MapServer

pytestmark = pytest.mark.timeout(30)


def f32(value: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", value))[0])


GENERATIONS = [f32(1.1 * g) for g in range(1, 400)]


def torn_value_scan(name: str):  # type: ignore[no-untyped-def]
    """A PLC that writes a new value into `name` between any two requests."""
    state = {"g": 0}

    async def scan(server: MapServer) -> None:
        state["g"] += 1
        await server.set(name, GENERATIONS[state["g"] % len(GENERATIONS)])

    return scan


async def assert_never_torn(plc: ModbusTransport, name: str, reads: int = 20) -> None:
    for _ in range(reads):
        value = await plc.read_value(name)
        assert value in GENERATIONS, f"torn read of {name}: {value!r}"


async def test_a_float32_updated_between_requests_is_never_read_torn(
    server: MapServer, regmap: RegisterMap
) -> None:
    server.scans.append(torn_value_scan("vessel1.volume"))
    async with ModbusTransport(regmap, link_to(server)) as plc:
        await assert_never_torn(plc, "vessel1.volume")


async def test_the_same_check_fails_when_halves_are_read_in_two_requests(
    server: MapServer, regmap: RegisterMap
) -> None:
    # Without the rule (an entry may be split over requests), the check above catches tears.
    server.scans.append(torn_value_scan("vessel1.volume"))
    async with ModbusTransport(regmap, link_to(server), max_count=1) as plc:
        with pytest.raises(AssertionError, match=r"torn read of vessel1.volume"):
            await assert_never_torn(plc, "vessel1.volume")


def group_scan(chance: float):  # type: ignore[no-untyped-def]
    """A PLC updating pv.f32 and pv.far together (generation g) between requests, with a
    seeded `chance` per request, bumping pv.seq once per update."""
    state = {"g": 0}
    rng = random.Random(4)

    async def scan(server: MapServer) -> None:
        if rng.random() < chance:
            state["g"] += 1
            await server.set("pv.f32", float(state["g"]))
            await server.set("pv.far", float(state["g"]))
            await server.set("pv.seq", state["g"] % 65536)

    return scan


async def test_a_group_spanning_requests_is_read_under_its_sequence_register(
    server: MapServer, regmap: RegisterMap
) -> None:
    server.scans.append(group_scan(0.3))
    async with ModbusTransport(regmap, link_to(server)) as plc:
        for _ in range(15):
            values = await plc.read("pv.f32", "pv.far")
            assert values["pv.f32"] == values["pv.far"]


async def test_without_the_group_the_same_read_mixes_generations(
    server: MapServer, regmap: RegisterMap
) -> None:
    server.scans.append(group_scan(0.3))
    ungrouped = RegisterMap.model_validate(regmap.model_dump() | {"consistent": []})
    async with ModbusTransport(ungrouped, link_to(server)) as plc:
        mixed = [await plc.read("pv.f32", "pv.far") for _ in range(20)]
    assert any(v["pv.f32"] != v["pv.far"] for v in mixed)


async def test_a_group_that_never_settles_is_an_inconsistent_read(
    server: MapServer, regmap: RegisterMap
) -> None:
    server.scans.append(group_scan(1.0))
    async with ModbusTransport(regmap, link_to(server)) as plc:
        with pytest.raises(ModbusInconsistentRead, match=r"testplc: read pv.f32, pv.far: group"):
            await plc.read("pv.f32", "pv.far")


async def push_events(server: MapServer, codes: list[int]) -> None:
    head = (
        int((await server.get_raw("events.head"))[1])
        | (await server.get_raw("events.head"))[0] << 16
    )
    ring = server.map.ring("events")
    for code in codes:
        head += 1
        slot = (head - 1) % ring.capacity
        base = ring.base + slot * ring.stride
        await server.set_words("input", base, [head >> 16, head & 0xFFFF, code, 0])
    await server.set("events.head", head)


async def test_event_ring_is_read_from_the_last_sequence_seen_even_across_a_reconnect(
    server: MapServer, regmap: RegisterMap
) -> None:
    async with ModbusTransport(regmap, link_to(server)) as plc:
        assert (await plc.read_ring("events", 0)).records == []
        await push_events(server, [11, 12, 13])
        first = await plc.read_ring("events", 0)
        assert [(r["seq"], r["code"]) for r in first.records] == [(1, 11), (2, 12), (3, 13)]
        assert first.head == 3
        assert not first.lost
        await server.stop()
        await server.restart()
        await push_events(server, [14, 15])  # while the link was down
        again = await plc.read_ring("events", first.head)
        assert [r["code"] for r in again.records] == [14, 15]  # wraps the 4-slot ring
        await push_events(server, [16, 17, 18, 19, 20, 21])  # more than the ring holds
        late = await plc.read_ring("events", again.head)
        assert late.lost == range(6, 8)
        assert [r["seq"] for r in late.records] == [8, 9, 10, 11]


def commit_handler(server: MapServer, corrupt: bool = False):  # type: ignore[no-untyped-def]
    """The device side of a download: on commit, check length and CRC, answer in status."""
    block = server.map.download("recipe")

    async def on_write(table: str, address: int, words: list[int]) -> None:
        commit = server.map.entry(block.commit)
        if table != "coils" or address != commit.address or not words[0]:
            return
        length = (await server.get_raw(block.length))[0]
        data = await server.get_words("holding", block.data_address, block.data_words)
        payload = b"".join(w.to_bytes(2, "big") for w in data)[:length]
        if corrupt:
            payload = b"x" + payload[1:]
        crc_words = await server.get_raw(block.crc)
        ok = recipe_crc(payload) == crc_words[0] << 16 | crc_words[1]
        await server.set(block.status, 1 if ok else 2)
        await server.set(block.commit, False)

    return on_write


async def test_a_recipe_download_is_committed_with_length_and_crc(
    server: MapServer, regmap: RegisterMap
) -> None:
    server.on_write.append(commit_handler(server))
    payload = b'{"program": "sheet", "vessels": 10}'
    async with ModbusTransport(regmap, link_to(server)) as plc:
        assert await plc.download("recipe", payload) == 1
    assert await server.get_raw("recipe.length") == [len(payload)]
    crc = recipe_crc(payload)
    assert await server.get_raw("recipe.crc") == [crc >> 16, crc & 0xFFFF]


async def test_a_recipe_the_device_refuses_is_a_typed_error(
    server: MapServer, regmap: RegisterMap
) -> None:
    server.on_write.append(commit_handler(server, corrupt=True))
    async with ModbusTransport(regmap, link_to(server)) as plc:
        with pytest.raises(RecipeDownloadError, match=r"status 2 \(crc mismatch\)"):
            await plc.download("recipe", b"abc")
        with pytest.raises(RecipeDownloadError, match="65 bytes exceed the block's 64"):
            await plc.download("recipe", b"y" * 65)
