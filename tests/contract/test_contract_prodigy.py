"""The Prodigy simulator answers as schemas/protocols/prodigy.md says, to a client written from
the document alone (contract_wire.py): the independent-client scenarios of issue 13."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from contract_wire import Link, frame, payload_text

from cellauto.profiles import load_profile
from cellauto_simulators.prodigy import ProdigySimulator, start_simulator

pytestmark = pytest.mark.asyncio(loop_scope="module")
PROFILE = load_profile("prodigy")
INTERNALS = ("None", "b'", "!=", "Traceback", "Error")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sim() -> AsyncIterator[ProdigySimulator]:
    simulator = await start_simulator(PROFILE, {"speed": "max", "seed": "5"})
    yield simulator
    await simulator.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def link(sim: ProdigySimulator) -> AsyncIterator[Link]:
    conn = await Link.open(sim.url)
    kind, _, _, _ = await conn.request(payload_text("H", 1, "HELLO"))
    assert kind == "R"
    yield conn
    await conn.close()


def readable(reason: str) -> bool:
    return bool(reason) and not any(mark in reason for mark in INTERNALS)


async def test_the_clock_starts_with_the_first_session(sim: ProdigySimulator) -> None:
    conn = await Link.open(sim.url)
    try:
        _, _, _, hello = await conn.request(payload_text("H", 1, "HELLO"))
        # only the power-on samples (one per channel at most) precede the first session
        assert int(hello["last"]) <= len(PROFILE.channels())
    finally:
        await conn.close()


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"p__moi": "nan"}, ["moi", "finite"]),
        ({"p__moi": "inf"}, ["moi", "finite"]),
        ({"p__moi": "25"}, ["moi", "maximum 10"]),
        ({"p__target_cells": "1e7"}, ["target_cells", "minimum"]),
        ({"p__bogus": "1"}, ["unknown parameter bogus"]),
        ({"p__culture_volume": "200", "p__culture_volume__u": "L"}, ["culture_volume", "mL"]),
        ({"p__moi": "five"}, ["moi", "number"]),
    ],
)
async def test_start_with_a_bad_parameter_is_e03_with_a_readable_reason(
    link: Link, fields: dict[str, str], words: list[str]
) -> None:
    _, _, _, before = await link.request(payload_text("H", 6, "STATE"))
    request = payload_text("H", 7, "START", prog="TCT", run="r-1", job="B-1", **fields)
    kind, seq, verb, reply = await link.request(request)
    assert (kind, seq, verb, reply["code"]) == ("N", 7, "NAK", "E03")
    assert readable(reply["reason"]), reply["reason"]
    for word in words:
        assert word in reply["reason"]
    _, _, _, state = await link.request(payload_text("H", 8, "STATE"))
    assert state == before  # nothing started


async def test_a_lower_case_verb_is_an_unknown_verb_naming_its_seq(link: Link) -> None:
    kind, seq, _, reply = await link.request(payload_text("H", 9, "hello"))
    assert (kind, seq, reply["code"]) == ("N", 9, "E02")
    assert readable(reply["reason"])
    assert "hello" in reply["reason"]


async def test_a_reason_too_long_for_a_frame_is_cut_and_the_link_survives(link: Link) -> None:
    channel = "\u00e9" * 168  # 1008 bytes percent-encoded in the request; a reason would not fit
    kind, seq, _, reply = await link.request(payload_text("H", 10, "GET", ch=channel))
    assert (kind, seq, reply["code"]) == ("N", 10, "E06")
    assert reply["reason"].endswith("..."), reply["reason"]
    kind, seq, verb, _ = await link.request(payload_text("H", 11, "PING"))
    assert (kind, seq, verb) == ("R", 11, "PING")


async def test_a_bad_checksum_is_e01_with_a_readable_reason(link: Link) -> None:
    good = frame(payload_text("H", 12, "PING"))
    await link.send_raw(good[:-2] + b"00")
    kind, seq, _, reply = await link.answer()
    assert (kind, seq, reply["code"]) == ("N", 0, "E01")
    assert readable(reply["reason"])
    assert "checksum" in reply["reason"]


async def test_log_from_zero_reports_no_lost_events(link: Link) -> None:
    kind, _, _, reply = await link.request(payload_text("H", 13, "LOG", **{"from": "0"}))
    assert kind == "R"
    assert "lost" not in reply
    assert int(reply["n"]) == int(reply["last"])


async def test_a_second_sub_replaces_the_first(link: Link) -> None:
    await link.request(payload_text("H", 14, "SUB", ch="chamber.temperature"))
    _, _, _, reply = await link.request(payload_text("H", 15, "SUB", ch="pump.flow_rate"))
    assert reply["n"] == "1"


async def test_an_unknown_command_parameter_and_a_nan_result_are_refused(link: Link) -> None:
    bad = [
        {"c": "enter_ipc_result", "p__glucose": "nan", "p__glucose__u": "mmol/L"},
        {"c": "take_sample", "p__volume": "50", "p__volume__u": "mL"},
        {"c": "take_sample", "p__colour": "red"},
    ]
    for n, fields in enumerate(bad, start=20):
        kind, seq, _, reply = await link.request(payload_text("H", n, "X", **fields))
        assert (kind, seq, reply["code"]) == ("N", n, "E03"), reply
        assert readable(reply["reason"]), reply["reason"]
