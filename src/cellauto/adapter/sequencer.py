"""`EventSequencer`: a device's numbered events, applied once each and in order.

Devices number their events (1, 2, 3 ...; some wrap) and keep a log the host can read back
from a given number. The sequencer applies live events in order and drops repeats; an event
that skips ahead is held, and one read-back (the adapter's ``events after N``) fills the gap.
A reconnect, or a heartbeat or status reporting a newer number, asks for a read-back too. What
the device's log no longer holds is reported once as a lost range
(`cellauto.driver.Device.report_lost_events`: one ``note`` event with ``data["lost_seq"]``).
A command whose effect the device numbered returns after ``await sequencer.applied(seq)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from cellauto.errors import CellautoError

__all__ = ["EventSequencer", "ReadBack"]

E = TypeVar("E")

_log = logging.getLogger("cellauto.adapter.sequencer")


@dataclass(frozen=True)
class ReadBack(Generic[E]):
    """What the device's log returned for ``events after N``."""

    events: Sequence[tuple[int, E]] = ()
    """Logged events as (seq, event), oldest first. Empty where the wire delivers them as
    ordinary events (`EventSequencer.offer`) before the read-back's reply."""
    lost: tuple[int, int] | None = None
    """First and last seq the log no longer held, if any."""


class EventSequencer(Generic[E]):
    """Applies device `device`'s numbered events once each, in seq order.

    `apply(seq, event)` is awaited for each event; `read_back(first)` fetches the logged events
    from seq `first` on; `on_lost(first, last)` is called once for each range the log no longer
    held. `wrap`: seqs run 1..wrap and then start at 1 again (None: they never wrap). An event
    that cannot be applied (`apply` raises a `CellautoError`, `KeyError`, `TypeError` or
    `ValueError`) is logged and counted as applied, so it is never applied twice.
    """

    def __init__(
        self,
        device: str,
        apply: Callable[[int, E], Awaitable[None]],
        read_back: Callable[[int], Awaitable[ReadBack[E]]],
        on_lost: Callable[[int, int], object],
        *,
        wrap: int | None = None,
    ) -> None:
        self.device = device
        self._apply = apply
        self._read_back = read_back
        self._on_lost = on_lost
        self.wrap = wrap
        self.last: int | None = None
        """The newest seq applied or declared lost (every one before it too); None until
        `start_at`."""
        self.seen: int | None = None
        """The newest seq known to exist (offered, or reported by `behind`)."""
        self.read_backs = 0
        """Read-backs done."""
        self.lost = 0
        """Events declared lost."""
        self._held: dict[int, E] = {}
        self._applying = asyncio.Lock()
        self._reading = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    # -- seq arithmetic ------------------------------------------------------------------------

    def next(self, seq: int) -> int:
        """The seq after `seq`."""
        return seq % self.wrap + 1 if self.wrap else seq + 1

    def after(self, seq: int, other: int) -> bool:
        """Whether `seq` is newer than `other` (with wrap: less than half the range ahead)."""
        if self.wrap is None:
            return seq > other
        return 0 < (seq - other) % self.wrap < self.wrap // 2

    # -- input ---------------------------------------------------------------------------------

    def start_at(self, seq: int) -> None:
        """Every event up to `seq` is known (read at connect); later ones are applied."""
        self.last = self.seen = seq
        self._held.clear()
        self._advanced()

    async def offer(self, seq: int, event: E) -> None:
        """A live event (or a logged one the wire delivers like a live one): applied if it is
        the next, dropped if already applied, otherwise held until a read-back fills the gap."""
        async with self._applying:
            last = self.last
            if last is None or not self.after(seq, last):
                return
            self._saw(seq)
            if seq != self.next(last):
                self._held[seq] = event
                self.request_read_back()
                return
            await self._apply_one(seq, event)
            await self._drain()

    def behind(self, newest: int) -> bool:
        """The device reports `newest` as its newest seq (heartbeat, status): True, and one
        read-back is requested, if events up to it are missing."""
        if self.last is None or not self.after(newest, self.last):
            return False
        self._saw(newest)
        self.request_read_back()
        return True

    def request_read_back(self) -> None:
        """Read the log back in the background (one at a time; a request while one runs is
        covered by it or repeated once it ends)."""
        self._again = True
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._read_back_quietly(), name=f"{self.device} log")

    async def read_back(self) -> None:
        """Read the log back from the first missing seq and apply what it returns (a reconnect
        awaits this); the read-back's errors propagate."""
        async with self._reading:
            if self.last is None:
                return
            first = self.next(self.last)
            self.read_backs += 1
            logged = await self._read_back(first)
            async with self._applying:
                if logged.lost is not None:
                    self._lose(logged.lost[1])
                for seq, event in logged.events:
                    if self.last is not None and self.after(seq, self.last):
                        self._saw(seq)
                        self._held[seq] = event
                await self._drain()

    async def applied(self, seq: int) -> None:
        """Return once every event up to `seq` was applied (or declared lost)."""
        if self.last is not None and not self.after(seq, self.last):
            return
        waiter = (seq, asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        try:
            await waiter[1]
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    async def caught_up(self) -> None:
        """Return once every event known to exist (`seen`) was applied."""
        if self.seen is not None:
            await self.applied(self.seen)

    async def close(self) -> None:
        """Stop a read-back in progress."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- internals -----------------------------------------------------------------------------

    async def _read_back_quietly(self) -> None:
        while True:
            self._again = False
            before = self.last
            try:
                await self.read_back()
            except CellautoError as exc:
                _log.warning("%s: log read-back failed: %s", self.device, exc)
                if not self._again:
                    return  # retried on the next gap, reconnect or heartbeat
                continue
            if not self._held or (self.last == before and not self._again):
                return  # the gap is filled, or nothing new came of it

    def _saw(self, seq: int) -> None:
        if self.seen is None or self.after(seq, self.seen):
            self.seen = seq

    def _lose(self, last: int) -> None:
        """Events from the first missing one to `last` are gone."""
        if self.last is None or not self.after(last, self.last):
            return
        first = self.next(self.last)
        self.lost += (last - first) % self.wrap + 1 if self.wrap else last - first + 1
        self._on_lost(first, last)
        self.last = last
        for seq in [s for s in self._held if not self.after(s, last)]:
            del self._held[seq]
        self._advanced()

    async def _drain(self) -> None:
        while self.last is not None:
            seq = self.next(self.last)
            if seq not in self._held:
                return
            await self._apply_one(seq, self._held.pop(seq))

    async def _apply_one(self, seq: int, event: E) -> None:
        try:
            await self._apply(seq, event)
        except (CellautoError, KeyError, TypeError, ValueError):
            _log.exception("%s: event %d could not be applied", self.device, seq)
        self.last = seq
        self._advanced()

    def _advanced(self) -> None:
        last = self.last
        for seq, done in self._waiters:
            if last is not None and not self.after(seq, last) and not done.done():
                done.set_result(None)
