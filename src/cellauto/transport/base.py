"""What every frame transport offers an adapter, and its connection-state events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Literal, NamedTuple, Protocol, Self

__all__ = ["ConnectionEvent", "ConnectionState", "EventHub", "FrameTransport", "log_io"]

logger = logging.getLogger("cellauto.transport")

ConnectionState = Literal["connected", "disconnected", "reconnecting"]


class ConnectionEvent(NamedTuple):
    """A change of a transport's connection state, with a human-readable detail."""

    state: ConnectionState
    detail: str


class FrameTransport(Protocol):
    """A framed, request/response-capable link to one device, as adapters use it."""

    device: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def send(self, payload: bytes, *, operation: str = "send") -> None: ...

    async def receive(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - the per-request timeout is the API
        *,
        operation: str = "receive",
    ) -> bytes: ...

    async def request(
        self,
        payload: bytes,
        timeout: float,  # noqa: ASYNC109 - the per-request timeout is the API
        *,
        operation: str = "request",
    ) -> bytes: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def events(self) -> AsyncIterator[ConnectionEvent]: ...


class EventHub:
    """Fans connection events out to a callback and to any number of async iterators."""

    def __init__(self, callback: Callable[[ConnectionEvent], None] | None = None) -> None:
        self._callback = callback
        self._queues: list[asyncio.Queue[ConnectionEvent | None]] = []

    def publish(self, device: str, event: ConnectionEvent) -> None:
        logger.info("%s: %s (%s)", device, event.state, event.detail)
        if self._callback is not None:
            self._callback(event)
        for queue in self._queues:
            queue.put_nowait(event)

    def end(self) -> None:
        for queue in self._queues:
            queue.put_nowait(None)
        self._queues.clear()

    def subscribe(self) -> AsyncIterator[ConnectionEvent]:
        """Events from now on, until the transport closes."""
        queue: asyncio.Queue[ConnectionEvent | None] = asyncio.Queue()
        self._queues.append(queue)
        return self._drain(queue)

    async def _drain(
        self, queue: asyncio.Queue[ConnectionEvent | None]
    ) -> AsyncIterator[ConnectionEvent]:
        try:
            while (event := await queue.get()) is not None:
                yield event
        finally:
            if queue in self._queues:
                self._queues.remove(queue)


def log_io(device: str, direction: str, data: bytes) -> None:
    """Log bytes at DEBUG as hex and printable ASCII."""
    if logger.isEnabledFor(logging.DEBUG):
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in data)
        logger.debug("%s %s %d B %s |%s|", device, direction, len(data), data.hex(" "), text)
