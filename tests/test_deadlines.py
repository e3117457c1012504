"""`cellauto.deadlines.Deadlines`, which bounds every Device operation in time: what
`asyncio.timeout` does, without a timer per await."""

from __future__ import annotations

import asyncio

import pytest

from cellauto.deadlines import Deadlines


async def answer(value: int) -> int:
    await asyncio.sleep(0)
    return value


async def test_an_await_that_ends_in_time_returns_its_result() -> None:
    deadlines = Deadlines()
    assert await deadlines.run(60.0, answer(7)) == 7


async def test_an_overdue_await_is_cancelled_and_raises_timeout_error() -> None:
    deadlines = Deadlines()
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    with pytest.raises(TimeoutError):
        await deadlines.run(0.01, forever())
    assert cancelled.is_set()


async def test_a_later_await_is_bounded_by_its_own_deadline() -> None:
    deadlines = Deadlines()
    assert await deadlines.run(60.0, answer(1)) == 1  # leaves a timer set 60 s out
    with pytest.raises(TimeoutError):
        await deadlines.run(0.01, asyncio.Event().wait())


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = Deadlines()
    task = asyncio.create_task(deadlines.run(60.0, asyncio.Event().wait()))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_concurrent_awaits_expire_each_at_their_deadline() -> None:
    deadlines = Deadlines()
    slow = asyncio.create_task(deadlines.run(0.02, asyncio.Event().wait()))
    quick = asyncio.create_task(deadlines.run(60.0, answer(3)))
    assert await quick == 3
    with pytest.raises(TimeoutError):
        await slow


async def test_many_bounded_awaits_leave_one_timer_in_the_loop() -> None:
    # behind a sooner live timer (a poll, a heartbeat), asyncio.timeout's cancelled timers stay
    # in the loop's heap (up to half of it): walking them cost a Modbus read a tenth of its time
    loop = asyncio.get_running_loop()
    poll = loop.call_later(30.0, lambda: None)
    deadlines = Deadlines()
    before = len(loop._scheduled)  # type: ignore[attr-defined]
    for n in range(500):
        assert await deadlines.run(60.0, answer(n)) == n
    assert len(loop._scheduled) - before <= 1  # type: ignore[attr-defined]
    assert deadlines.timers == 1
    poll.cancel()
