"""Operation: the handle of a long-running call (SiLA observable-command semantics)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Generic, Literal, TypeVar

from cellauto.errors import DeviceError

T = TypeVar("T")

ExecutionStatus = Literal["waiting", "running", "finishedSuccessfully", "finishedWithError"]


@dataclass(frozen=True, slots=True)
class OperationStatus:
    """Where an operation stands: SiLA execution status plus the device's view of the run."""

    status: ExecutionStatus
    device_state: str
    progress: float = 0.0
    remaining: timedelta | None = None
    step_name: str | None = None
    step_number: int | None = None
    step_count: int | None = None


class Operation(Generic[T]):
    """A long-running call in flight: awaitable for its result, watchable, cancellable.

    ``await op`` gives the result or raises the error the device reported (e.g. the run was
    aborted). ``async for status in op.watch()`` yields the current status and then every change
    until the operation ends; watchers never fall behind by more than the latest status.
    """

    def __init__(
        self,
        device: str,
        name: str,
        cancel: Callable[[], Awaitable[None]],
        initial: OperationStatus,
    ) -> None:
        self.device = device
        self.name = name
        self._cancel = cancel
        self._status = initial
        self._version = 0
        self._changed = asyncio.Condition()
        self._future: asyncio.Future[T] = asyncio.get_running_loop().create_future()

    @property
    def status(self) -> OperationStatus:
        """The latest status."""
        return self._status

    def done(self) -> bool:
        """True once the operation has a result or an error."""
        return self._future.done()

    def __await__(self) -> Generator[object, None, T]:
        return asyncio.shield(self._future).__await__()

    async def watch(self) -> AsyncIterator[OperationStatus]:
        """The current status, then each change, ending after the final status."""
        seen = -1
        while True:
            async with self._changed:
                while self._version == seen:
                    await self._changed.wait()
                seen, status = self._version, self._status
            yield status
            if status.status.startswith("finished"):
                return

    async def cancel(self) -> None:
        """Ask the device to end the operation (a stop); await the operation to see how it ended."""
        if not self.done():
            await self._cancel()

    async def update(self, **changes: object) -> None:
        """Publish a new status (adapter and core use this)."""
        await self._publish(replace(self._status, **changes))  # type: ignore[arg-type]

    async def finish(self, result: T, device_state: str) -> None:
        """End successfully with `result`."""
        if self._future.done():
            return
        self._future.set_result(result)
        await self._publish(
            replace(
                self._status,
                status="finishedSuccessfully",
                device_state=device_state,
                progress=1.0,
                remaining=timedelta(0),
            )
        )

    async def fail(self, error: DeviceError, device_state: str) -> None:
        """End with `error` (raised by ``await op``)."""
        if self._future.done():
            return
        self._future.set_exception(error)
        self._future.exception()  # retrieved here: nobody awaiting must not warn
        await self._publish(
            replace(self._status, status="finishedWithError", device_state=device_state)
        )

    async def _publish(self, status: OperationStatus) -> None:
        async with self._changed:
            self._status = status
            self._version += 1
            self._changed.notify_all()
