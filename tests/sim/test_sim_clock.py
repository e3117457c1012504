"""The virtual clock: real, scaled and max-speed modes, and max speed next to real I/O."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta

import pytest

from cellauto.errors import SimulationError
from cellauto.sim import DEFAULT_EPOCH, DiscreteEventClock, ScaledClock, make_clock

DAY = 86400.0


async def test_max_speed_runs_ten_days_of_wake_ups_in_order() -> None:
    clock = DiscreteEventClock()
    wakes: list[float] = []

    async def every(period: float) -> None:
        while clock.monotonic() + period <= 10 * DAY:
            await clock.sleep(period)
            wakes.append(clock.monotonic())

    await asyncio.gather(every(60.0), every(600.0), every(3600.0))
    assert clock.monotonic() == 10 * DAY
    assert len(wakes) == 14400 + 1440 + 240
    assert wakes == sorted(wakes)
    assert clock.now() == DEFAULT_EPOCH + timedelta(days=10)


async def test_max_speed_wakes_in_time_order_and_ties_in_call_order() -> None:
    clock = DiscreteEventClock(start=datetime(2030, 5, 1, tzinfo=UTC))
    order: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        order.append((name, clock.monotonic()))

    await asyncio.gather(sleeper("c", 30), sleeper("a", 10), sleeper("b", 10), sleeper("d", 0))
    assert order == [("d", 0.0), ("a", 10.0), ("b", 10.0), ("c", 30.0)]
    assert clock.now() == datetime(2030, 5, 1, 0, 0, 30, tzinfo=UTC)
    assert clock.now().tzinfo is UTC


async def test_sleep_until_takes_datetimes_and_seconds_and_rejects_naive() -> None:
    clock = DiscreteEventClock()
    await clock.sleep_until(DEFAULT_EPOCH + timedelta(hours=2))
    assert clock.monotonic() == 7200
    await clock.sleep_until(3600.0)  # in the past: no-op
    assert clock.monotonic() == 7200
    with pytest.raises(SimulationError, match="naive"):
        await clock.sleep_until(datetime(2025, 1, 2))


async def test_cancelled_sleepers_neither_wake_nor_hold_time() -> None:
    clock = DiscreteEventClock()
    woke: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.monotonic())

    doomed = asyncio.create_task(sleeper(100))
    survivor = asyncio.create_task(sleeper(200))
    await asyncio.sleep(0)
    doomed.cancel()
    await survivor
    assert woke == [200]
    assert clock.pending == 0


async def test_time_stands_still_while_busy() -> None:
    clock = DiscreteEventClock()
    woke = asyncio.create_task(clock.sleep(5))
    with clock.busy():
        await asyncio.sleep(0.02)  # real time passes, with the loop idle
        assert clock.monotonic() == 0
        assert not woke.done()
    await woke
    assert clock.monotonic() == 5


@pytest.mark.parametrize("hold_busy", [True, False])
async def test_max_speed_with_real_loopback_io(hold_busy: bool) -> None:
    """A simulator ticking on the clock, a wire server and a client in one loop: time does not
    move during a request/response round trip, whether the client holds the clock busy (always
    safe) or relies on the quiet iterations the advancer waits for (enough for loopback)."""
    clock = DiscreteEventClock()

    handled = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.readline():
            writer.write(f"{clock.monotonic()!r}\n".encode())
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        handled.set()

    async def ticker() -> None:
        while clock.monotonic() < DAY:
            await clock.sleep(10.0)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    tick = asyncio.create_task(ticker())
    try:
        for _ in range(50):
            await clock.sleep(600.0)
            with clock.busy() if hold_busy else contextlib.nullcontext():
                sent = clock.monotonic()
                writer.write(b"now?\n")
                answer = float(await reader.readline())
                assert answer == sent
                assert clock.monotonic() == sent
        await tick
        assert clock.monotonic() == DAY
    finally:
        writer.close()
        await writer.wait_closed()
        await handled.wait()
        server.close()
        await server.wait_closed()


async def test_scaled_clock_runs_n_times_real_time() -> None:
    clock = ScaledClock(200.0)
    t0 = time.perf_counter()
    await clock.sleep(4.0)
    wall = time.perf_counter() - t0
    assert 0.018 <= wall < 0.5
    assert clock.monotonic() >= 4.0
    assert clock.monotonic() == pytest.approx(wall * 200, rel=0.5)


async def test_real_clock_follows_the_wall_clock() -> None:
    clock = make_clock(1)
    assert isinstance(clock, ScaledClock)
    before = datetime.now(UTC)
    await clock.sleep_until(0.02)
    assert clock.monotonic() >= 0.02
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=0.1)
    assert clock.now() >= before


def test_make_clock_parses_url_speeds() -> None:
    assert isinstance(make_clock("max"), DiscreteEventClock)
    assert make_clock("60").speed == 60.0
    assert make_clock(2.5).speed == 2.5
    for bad in ("fast", "0", "-3", "nan", "inf"):
        with pytest.raises(SimulationError, match="positive number or 'max'"):
            make_clock(bad)


def test_max_clock_starts_at_a_fixed_epoch_and_real_clock_now() -> None:
    assert DiscreteEventClock().now() == DEFAULT_EPOCH
    assert abs(ScaledClock().now() - datetime.now(UTC)) < timedelta(seconds=1)
    with pytest.raises(SimulationError, match="naive"):
        DiscreteEventClock(start=datetime(2025, 1, 1))


async def test_a_pinned_clock_waits_without_spinning() -> None:
    # Regression: pinning the clock while the advancer was counting quiet loop iterations made
    # it spin on asyncio.sleep(0) until unpinned (a core at 100 % during every open prompt).
    import time

    clock = DiscreteEventClock()
    other = asyncio.create_task(clock.sleep(3600))
    for _ in range(3):  # the sleeper starts the advancer, which starts counting quiet iterations
        await asyncio.sleep(0)
    started = time.process_time()
    with clock.busy():
        await asyncio.sleep(0.5)
    assert time.process_time() - started < 0.25  # a spinning advancer burns ~0.5 s of CPU
    await other
    assert clock.monotonic() == 3600
