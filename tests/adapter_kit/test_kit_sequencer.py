"""`EventSequencer`: any interleaving, duplication or loss of a device's numbered events ends
with every event applied once and in order, plus exactly the ranges its log no longer held."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellauto.adapter import EventSequencer, ReadBack
from cellauto.errors import ConnectionLost, DeviceError


@dataclass
class FakeLog:
    """A device's event log: events 1..newest (as seqs from `base`, wrapping at `wrap`), of
    which the oldest `evicted` are no longer held."""

    newest: int
    evicted: int = 0
    base: int = 0
    wrap: int | None = None
    inline: bool = False
    """Deliver read-back events through `offer` (a stream), not in the ReadBack (a reply)."""
    applied: list[int] = field(default_factory=list)
    lost: list[tuple[int, int]] = field(default_factory=list)
    reading: int = 0
    overlapping_reads: int = 0
    sequencer: EventSequencer[int] | None = None

    def seq(self, n: int) -> int:
        """The wire seq of the n-th event (1-based)."""
        s = self.base + n
        return (s - 1) % self.wrap + 1 if self.wrap else s

    def index(self, seq: int) -> int:
        """The n of a wire seq."""
        if self.wrap is None:
            return seq - self.base
        return (seq - self.base - 1) % self.wrap + 1

    async def apply(self, seq: int, event: int) -> None:
        assert self.seq(event) == seq
        self.applied.append(event)
        await asyncio.sleep(0)

    def on_lost(self, first: int, last: int) -> None:
        self.lost.append((self.index(first), self.index(last)))

    async def read_back(self, first: int) -> ReadBack[int]:
        self.reading += 1
        self.overlapping_reads += self.reading > 1
        await asyncio.sleep(0)
        start = self.index(first)
        kept = range(max(start, self.evicted + 1), self.newest + 1)
        lost = (first, self.seq(self.evicted)) if start <= self.evicted else None
        self.reading -= 1
        if self.inline:
            assert self.sequencer is not None
            # a stream: the log's frames arrive before the reply that names the lost range
            for n in kept:
                await self.sequencer.offer(self.seq(n), n)
            return ReadBack(lost=lost)
        return ReadBack([(self.seq(n), n) for n in kept], lost)


def _sequencer(log: FakeLog) -> EventSequencer[int]:
    sequencer = EventSequencer("dev", log.apply, log.read_back, log.on_lost, wrap=log.wrap)
    log.sequencer = sequencer
    sequencer.start_at(log.seq(0))
    return sequencer


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    newest=st.integers(1, 30),
    inline=st.booleans(),
    wrapped=st.booleans(),
)
def test_any_delivery_applies_each_event_once_in_order_plus_the_lost_ranges(
    data: st.DataObject, newest: int, inline: bool, wrapped: bool
) -> None:
    evicted = data.draw(st.integers(0, newest), label="evicted")
    delivered = data.draw(
        st.lists(st.integers(1, newest), max_size=3 * newest), label="delivered (dup, lost, late)"
    )
    yields = data.draw(
        st.lists(st.integers(0, 3), min_size=len(delivered), max_size=len(delivered))
    )
    log = FakeLog(newest, evicted, base=990 if wrapped else 0, wrap=1000 if wrapped else None)
    log.inline = inline

    async def scenario() -> None:
        sequencer = _sequencer(log)
        for n, pause in zip(delivered, yields, strict=True):
            await sequencer.offer(log.seq(n), n)
            for _ in range(pause):
                await asyncio.sleep(0)
        await sequencer.read_back()  # a reconnect
        await asyncio.wait_for(sequencer.applied(log.seq(newest)), 5)
        await sequencer.close()
        assert sequencer.last == log.seq(newest)

    asyncio.run(scenario())
    assert log.overlapping_reads == 0
    lost = {n for first, last in log.lost for n in range(first, last + 1)}
    assert all(first <= last for first, last in log.lost)
    assert sorted(log.applied) == log.applied  # in order
    assert len(set(log.applied)) == len(log.applied)  # once
    assert not lost & set(log.applied)
    assert lost | set(log.applied) == set(range(1, newest + 1))
    assert all(n <= evicted for n in lost)  # only what the device no longer held


async def test_events_in_order_need_no_read_back() -> None:
    log = FakeLog(5)
    sequencer = _sequencer(log)
    for n in [1, 2, 2, 3, 1, 4, 5]:
        await sequencer.offer(n, n)
    assert log.applied == [1, 2, 3, 4, 5]
    assert sequencer.read_backs == 0


async def test_a_jump_holds_later_events_until_one_read_back_fills_the_gap() -> None:
    log = FakeLog(6)
    sequencer = _sequencer(log)
    await sequencer.offer(1, 1)
    for n in (4, 5, 6):
        await sequencer.offer(n, n)
    assert log.applied == [1]
    await sequencer.applied(6)
    assert log.applied == [1, 2, 3, 4, 5, 6]
    assert sequencer.read_backs == 1
    assert log.lost == []


async def test_what_the_log_no_longer_holds_is_one_lost_range() -> None:
    log = FakeLog(10, evicted=7)
    sequencer = _sequencer(log)
    await sequencer.offer(1, 1)
    await sequencer.offer(9, 9)
    await sequencer.applied(10)
    assert log.lost == [(2, 7)]
    assert log.applied == [1, 8, 9, 10]


async def test_a_heartbeat_reporting_a_newer_seq_reads_back() -> None:
    log = FakeLog(3)
    sequencer = _sequencer(log)
    assert not sequencer.behind(0)
    assert sequencer.behind(3)
    await sequencer.caught_up()
    assert log.applied == [1, 2, 3]
    assert sequencer.read_backs == 1


async def test_applied_waits_for_the_commands_event() -> None:
    log = FakeLog(2)
    sequencer = _sequencer(log)
    waiting = asyncio.create_task(sequencer.applied(2))
    await sequencer.offer(1, 1)
    await asyncio.sleep(0)
    assert not waiting.done()
    await sequencer.offer(2, 2)
    await waiting


async def test_an_event_that_cannot_be_applied_is_skipped_once() -> None:
    seen: list[int] = []

    async def apply(seq: int, event: int) -> None:
        seen.append(seq)
        if seq == 2:
            raise ValueError("bad field")

    sequencer: EventSequencer[int] = EventSequencer(
        "dev", apply, FakeLog(3).read_back, lambda a, b: None
    )
    sequencer.start_at(0)
    for n in (1, 2, 2, 3):
        await sequencer.offer(n, n)
    assert seen == [1, 2, 3]
    assert sequencer.last == 3


async def test_a_failed_background_read_back_is_retried_on_the_next_gap() -> None:
    log = FakeLog(4)
    failed = asyncio.Event()

    async def flaky(first: int) -> ReadBack[int]:
        if not failed.is_set():
            failed.set()
            raise ConnectionLost("dev", "log read-back", "link down")
        return await log.read_back(first)

    sequencer = EventSequencer("dev", log.apply, flaky, log.on_lost)
    sequencer.start_at(0)
    await sequencer.offer(3, 3)
    await failed.wait()
    await sequencer.offer(4, 4)
    await sequencer.applied(4)
    assert log.applied == [1, 2, 3, 4]


async def test_a_reconnect_read_back_raises_its_error() -> None:
    async def down(first: int) -> ReadBack[int]:
        raise ConnectionLost("dev", "log read-back", "link down")

    sequencer: EventSequencer[int] = EventSequencer("dev", FakeLog(1).apply, down, print)
    sequencer.start_at(0)
    with pytest.raises(DeviceError):
        await sequencer.read_back()


async def test_caught_up_waits_for_events_held_behind_a_gap() -> None:
    log = FakeLog(3)
    gate = asyncio.Event()

    async def slow(first: int) -> ReadBack[int]:
        await gate.wait()
        return await log.read_back(first)

    sequencer = EventSequencer("dev", log.apply, slow, log.on_lost)
    sequencer.start_at(0)
    await sequencer.offer(3, 3)  # a command's event, sent before its reply, behind a gap
    waiting = asyncio.create_task(sequencer.caught_up())
    await asyncio.sleep(0)
    assert not waiting.done()
    assert log.applied == []
    gate.set()
    await waiting
    assert log.applied == [1, 2, 3]
