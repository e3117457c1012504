"""What every frame transport offers an adapter, and its connection-state events."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import NamedTuple, Protocol, Self

__all__ = [
    "Backoff",
    "ConnectionEvent",
    "ConnectionState",
    "EventHub",
    "FrameTransport",
    "log_io",
]

logger = logging.getLogger("cellauto.transport")


class ConnectionState(StrEnum):
    """The connection states every transport publishes (compare equal to their strings)."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTING = "reconnecting"
    LOST = "lost"
    """Reconnecting ran out of its limits: the transport gave up for good."""


class ConnectionEvent(NamedTuple):
    """A change of a transport's connection state, with a human-readable detail and, for
    `reconnecting` and `lost`, the number of reconnect attempts so far."""

    state: ConnectionState
    detail: str
    attempts: int = 0


@dataclass(frozen=True)
class Backoff:
    """The reconnect policy of every transport: delays grow from `initial` by `factor` up to
    `max_delay`, each stretched by up to `jitter` (a fraction) at random (`seed` makes that
    reproducible). Reconnecting stops after `max_attempts` attempts or once the next attempt
    would start more than `max_time` s after the first delay began (None: no such limit)."""

    initial: float = 0.1
    max_delay: float = 10.0
    factor: float = 2.0
    jitter: float = 0.1
    max_attempts: int | None = None
    max_time: float | None = None
    seed: int | None = None

    def delays(self) -> Iterator[float]:
        """The delay before each reconnect attempt, until a limit is reached."""
        rng = random.Random(self.seed)
        delay = self.initial
        attempt = 0
        start = time.monotonic()
        while self.max_attempts is None or attempt < self.max_attempts:
            stretched = delay * (1 + self.jitter * rng.random())
            if self.max_time is not None and time.monotonic() - start + stretched > self.max_time:
                return
            attempt += 1
            yield stretched
            delay = min(delay * self.factor, self.max_delay)

    def limits(self) -> str:
        """The limits in words, for messages."""
        parts = []
        if self.max_attempts is not None:
            parts.append(f"at most {self.max_attempts} attempts")
        if self.max_time is not None:
            parts.append(f"at most {self.max_time:g} s")
        return " and ".join(parts) or "no limit"


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
