"""The virtual clock that simulators, programs and records share.

Three modes behind one interface: real time (``speed=1``), ``speed=N`` (N times real time) and
``speed="max"``, a discrete-event clock whose time jumps to the next scheduled wake-up as soon as
the event loop has gone quiet.

How ``speed="max"`` stays correct next to real I/O (a wire server on loopback, an adapter talking
to it in the same event loop): the advancer task moves time only after `idle_spins` consecutive
event-loop iterations in which no task went to sleep on the clock and nothing held the clock
busy. While the advancer spins with ``asyncio.sleep(0)`` the loop polls its sockets with a zero
timeout on every iteration, so bytes already written on loopback are read, answered and awaited
before time moves: a request/response over asyncio streams on loopback takes 4 iterations, and
the default of 6 leaves a margin. Code that knows it has a request in flight (a client between
sending a request and reading its answer, a wire server between reading a request and writing
its answer) wraps that in ``with clock.busy():``, which pauses the clock outright. Peers in
another process can send at any real moment; for them `io_grace` adds a real pause before every
advance (slower, but it lets their traffic land). Real timeouts of transports
stay in real time: they measure the wire, not the process.

Start times: real and scaled clocks start at the wall-clock time they are created (they run beside
people); the max-speed clock starts at `DEFAULT_EPOCH` so that a seeded run gives the same record,
timestamps included. Either can be given explicitly.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Literal

from cellauto.errors import SimulationError

DEFAULT_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
"""Where a max-speed clock starts unless told otherwise (fixed, so seeded runs repeat exactly)."""

Speed = float | Literal["max"]


class Clock(ABC):
    """Virtual time: ``now()`` (aware UTC), ``monotonic()`` (seconds since start), and sleeps."""

    speed: Speed
    start: datetime

    def now(self) -> datetime:
        """The current virtual time, timezone-aware UTC."""
        return self.start + timedelta(seconds=self.monotonic())

    @abstractmethod
    def monotonic(self) -> float:
        """Virtual seconds since the clock started; never goes back."""

    @abstractmethod
    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of virtual time (zero or less just yields to the event loop)."""

    async def sleep_until(self, t: datetime | float) -> None:
        """Sleep until virtual time `t`: an aware datetime or a `monotonic()` value."""
        await self.sleep(self.to_monotonic(t) - self.monotonic())

    def to_monotonic(self, t: datetime | float) -> float:
        """`t` as seconds since the clock's start."""
        if isinstance(t, datetime):
            if t.tzinfo is None:
                raise SimulationError(f"naive datetime {t.isoformat()}: give a timezone-aware time")
            return (t - self.start).total_seconds()
        return float(t)

    def at(self, seconds: float) -> datetime:
        """The aware UTC datetime `seconds` after the clock's start."""
        return self.start + timedelta(seconds=seconds)

    @contextmanager
    def busy(self) -> Iterator[None]:
        """Hold virtual time still while the block runs (matters only at ``speed="max"``)."""
        yield


class ScaledClock(Clock):
    """Real time multiplied by `speed` (1 is plain real time)."""

    def __init__(self, speed: float = 1.0, *, start: datetime | None = None) -> None:
        if not (math.isfinite(speed) and speed > 0):
            raise SimulationError(f"clock speed {speed!r}: expected a positive number or 'max'")
        self.speed = float(speed)
        self.start = _aware(start) if start is not None else datetime.now(UTC)
        self._t0 = time.monotonic()

    def monotonic(self) -> float:
        return (time.monotonic() - self._t0) * float(self.speed)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / float(self.speed))


class DiscreteEventClock(Clock):
    """``speed="max"``: time jumps to the next wake-up once every task is waiting.

    `idle_spins` is how many quiet event-loop iterations count as "everyone is waiting";
    `io_grace` (real seconds, default 0) is a pause before each advance for peers in other
    processes.
    """

    speed: Literal["max"]

    def __init__(
        self, *, start: datetime | None = None, idle_spins: int = 6, io_grace: float = 0.0
    ) -> None:
        if idle_spins < 1:
            raise SimulationError(f"idle_spins must be at least 1, not {idle_spins}")
        self.speed = "max"
        self.start = _aware(start) if start is not None else DEFAULT_EPOCH
        self.idle_spins = idle_spins
        self.io_grace = io_grace
        self._now = 0.0
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._activity = 0
        self._busy = 0
        self._unbusy: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._advancer: asyncio.Task[None] | None = None

    def monotonic(self) -> float:
        return self._now

    @property
    def pending(self) -> int:
        """How many sleepers wait on the clock."""
        return sum(1 for *_, fut in self._heap if not fut.done())

    async def sleep(self, seconds: float) -> None:
        if not seconds > 0:
            await asyncio.sleep(0)
            return
        loop = self._bind()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._heap, (self._now + seconds, next(self._seq), fut))
        self._activity += 1
        if self._advancer is None:
            self._advancer = loop.create_task(self._advance(), name="cellauto-clock-advancer")
        await fut

    @contextmanager
    def busy(self) -> Iterator[None]:
        self._busy += 1
        self._activity += 1
        try:
            yield
        finally:
            self._busy -= 1
            self._activity += 1
            if self._busy == 0 and self._unbusy is not None and not self._unbusy.done():
                self._unbusy.set_result(None)

    def _bind(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self.pending:
                raise SimulationError(
                    "this clock has sleepers in another event loop; use one clock per loop"
                )
            self._loop, self._heap, self._advancer, self._unbusy = loop, [], None, None
        return loop

    def _pinned(self) -> bool:
        return self._busy > 0

    def _discard_done(self) -> None:
        while self._heap and self._heap[0][2].done():
            heapq.heappop(self._heap)

    async def _advance(self) -> None:
        try:
            while True:
                self._discard_done()
                if not self._heap:
                    return
                if self._busy:
                    assert self._loop is not None
                    self._unbusy = self._loop.create_future()
                    await self._unbusy
                    continue
                quiet = 0
                while quiet < self.idle_spins and not self._pinned():
                    seen = self._activity
                    await asyncio.sleep(0)
                    quiet = quiet + 1 if seen == self._activity and not self._busy else 0
                if self._pinned():  # pinned meanwhile: park above instead of spinning
                    continue
                if self.io_grace > 0:
                    seen = self._activity
                    await asyncio.sleep(self.io_grace)
                    if seen != self._activity:
                        continue
                self._discard_done()
                if not self._heap or self._busy:
                    continue
                self._now = max(self._now, self._heap[0][0])
                while self._heap and self._heap[0][0] <= self._now:
                    fut = heapq.heappop(self._heap)[2]
                    if not fut.done():
                        fut.set_result(None)
        finally:
            self._advancer = None


def make_clock(speed: Speed | str = 1.0, *, start: datetime | None = None) -> Clock:
    """A clock for a URL-style speed: ``"max"``, a positive number, or its text (``"60"``)."""
    if speed == "max":
        return DiscreteEventClock(start=start)
    try:
        value = float(speed)
    except ValueError:
        raise SimulationError(
            f"clock speed {speed!r}: expected a positive number or 'max'"
        ) from None
    return ScaledClock(value, start=start)


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None:
        raise SimulationError(f"naive start time {t.isoformat()}: give a timezone-aware time")
    return t.astimezone(UTC)
