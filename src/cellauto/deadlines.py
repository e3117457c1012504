"""`Deadlines`: time limits on many short awaits for the cost of about one event-loop timer.

`asyncio.timeout` schedules a timer per await and cancels it when the await ends early; the
loop keeps cancelled timers in its heap until they are half of it, so at thousands of bounded
reads a second every timer push and pop walks a heap of a hundred dead ones. `Deadlines` keeps
the awaits in flight and one timer set for the earliest deadline among them; when it fires it
cancels what is overdue and sets itself for the next one. Semantics are those of
`asyncio.timeout`: an overdue await is cancelled and `TimeoutError` raised in its place, while a
cancellation from elsewhere stays a `CancelledError`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["Deadlines"]

T = TypeVar("T")


class _Pending:
    __slots__ = ("cancelling", "due", "expired", "task")

    def __init__(self, due: float, task: asyncio.Task[object], cancelling: int) -> None:
        self.due = due
        self.task = task
        self.cancelling = cancelling
        self.expired = False


class Deadlines:
    """Bounds awaits of one owner (a device) in time; see the module doc."""

    def __init__(self) -> None:
        self._pending: set[_Pending] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._due = math.inf

    @property
    def timers(self) -> int:
        """Timers armed and not yet fired or replaced (0 or 1)."""
        return int(self._timer is not None and not self._timer.cancelled())

    async def run(self, seconds: float, call: Awaitable[T]) -> T:
        """The result of `call`; `TimeoutError` (and `call` cancelled) if it takes longer than
        `seconds`."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - awaits always run in a task under asyncio
            raise RuntimeError("Deadlines.run needs a running task")
        pending = _Pending(loop.time() + seconds, task, task.cancelling())
        self._pending.add(pending)
        if self._timer is None or self._timer_loop is not loop or pending.due < self._due:
            self._arm(loop, pending.due)
        try:
            return await call
        except asyncio.CancelledError:
            if pending.expired and task.uncancel() <= pending.cancelling:
                raise TimeoutError from None
            raise
        finally:
            self._pending.discard(pending)

    def _arm(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._due = due
        self._timer_loop = loop
        self._timer = loop.call_at(due, self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self._due = math.inf
        now = loop.time()
        following = math.inf
        for pending in self._pending:
            if pending.expired:
                continue
            if pending.due <= now:
                pending.expired = True
                pending.task.cancel()
            else:
                following = min(following, pending.due)
        if following < math.inf:
            self._arm(loop, following)
