"""The framed-stream adapter base (`cellauto.adapter.FramedEventDevice`) through `tally`, a
device that is only a codec and a few hooks, served by the simulator family base on loopback
TCP: sessions, replies matched by seq, resends, refusals, events in order, log read-back, lost
ranges, reconnect and unreadable frames."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from framed_tally import SimulatedTally, TallyAdapter

from cellauto.errors import CommandRejected
from cellauto.registry import parse_url
from cellauto.sim.clock import ScaledClock
from cellauto.sim.device import EventLog
from cellauto.sim.servers.stream import TcpServer
from cellauto.state import IDLE

GUARD = 30.0  # s: a failure guard on waits for the adapter; never reached when it works


@dataclass
class Tally:
    sim: SimulatedTally
    server: TcpServer

    async def connect(self, **options: str) -> TallyAdapter:
        query = "&".join(f"{k}={v}" for k, v in ({"heartbeat": "0"} | options).items())
        device = TallyAdapter(parse_url(f"tally+tcp://127.0.0.1:{self.server.port}?{query}"))
        await device.connect()
        return device

    def verbs(self, verb: str) -> list[int]:
        """The seqs of every `verb` request the device read."""
        return [seq for v, seq in self.sim.requests if v == verb]


@pytest.fixture
async def tally() -> AsyncIterator[Tally]:
    clock = ScaledClock()
    sim = SimulatedTally(clock, EventLog(clock, maxlen=2))
    server = TcpServer(sim.serve)
    await server.start()
    yield Tally(sim, server)
    await server.close()


@pytest.fixture
async def device(tally: Tally) -> AsyncIterator[TallyAdapter]:
    device = await tally.connect(request_timeout="0.2")
    yield device
    await device.close()


async def test_a_device_is_its_codec_and_its_hooks(tally: Tally, device: TallyAdapter) -> None:
    assert device.info.model == "tally"
    assert device.state == IDLE
    for _ in range(3):
        await device.bump()  # returns once its COUNT event is applied
    assert device.counts == [(1, 1), (2, 2), (3, 3)]
    assert tally.verbs("BUMP") == [3, 4, 5]  # after HELLO and STATE: one seq per request
    assert device.framing_errors == 0


async def test_a_gap_is_filled_from_the_log(tally: Tally, device: TallyAdapter) -> None:
    tally.sim.hidden = 1  # COUNT 1 is logged but never sent live
    await device.bump()
    await device.bump()  # COUNT 2 arrives live, ahead of a gap: LOG from=1
    assert device.counts == [(1, 1), (2, 2)]
    assert device.sequencer.read_backs == 1
    assert device.sequencer.lost == 0


async def test_what_the_log_no_longer_holds_is_one_lost_range(
    tally: Tally, device: TallyAdapter
) -> None:
    tally.sim.hidden = 3  # the log keeps 2: COUNT 1 is gone by the read-back
    for _ in range(4):
        await device.bump()
    assert device.counts == [(3, 3), (4, 4)]
    assert device.sequencer.lost == 2


async def test_a_probe_naming_a_newer_event_reads_the_log_back(tally: Tally) -> None:
    device = await tally.connect(heartbeat="0.05", request_timeout="0.2")
    try:
        tally.sim.hidden = 1
        await device.bump()  # nothing comes live; the next PING names event 1
        async with asyncio.timeout(GUARD):
            await device.sequencer.applied(1)
        assert device.counts == [(1, 1)]
        assert tally.verbs("PING")
    finally:
        await device.close()


async def test_a_resend_code_resends_the_same_seq(tally: Tally, device: TallyAdapter) -> None:
    tally.sim.naks = ["BUSY", "BUSY"]
    await device.bump()
    assert device.counts == [(1, 1)]
    first, *resent = tally.verbs("BUMP")
    assert resent == [first, first]


async def test_other_refusals_are_rejected_with_the_tables_meaning(
    tally: Tally, device: TallyAdapter
) -> None:
    tally.sim.limit = 0
    with pytest.raises(CommandRejected, match=r"tally-1: bump: .*NAK FULL: the tally is full"):
        await device.bump()
    tally.sim.limit = 10
    tally.sim.naks = ["BUSY"] * 4  # more than the 3 resends
    with pytest.raises(CommandRejected, match="NAK BUSY: busy"):
        await device.bump()
    assert len(tally.verbs("BUMP")) == 1 + 4


async def test_a_reconnect_opens_a_session_and_reads_back_what_was_missed(
    tally: Tally, device: TallyAdapter
) -> None:
    await device.bump()
    await tally.server.unplug()
    tally.sim.count()  # while the cable is out: logged only
    tally.sim.count()
    await tally.server.plug()
    async with asyncio.timeout(GUARD):
        await device.sequencer.applied(3)
    assert device.counts == [(1, 1), (2, 2), (3, 3)]
    assert len(tally.verbs("HELLO")) == 2


async def test_an_unreadable_frame_is_counted_and_the_gap_filled(
    tally: Tally, device: TallyAdapter
) -> None:
    tally.server.corrupt(1)  # the COUNT event of the next bump
    await device.bump()
    await device.bump()
    assert device.framing_errors == 1
    assert device.counts == [(1, 1), (2, 2)]
