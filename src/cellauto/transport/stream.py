"""`StreamTransport`: framed request/response over a byte stream (TCP, serial, pty), with
per-request timeouts, I/O logging, capture, automatic reconnect and a heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from cellauto.errors import ConnectionLost, DeviceError, DeviceTimeout, FramingError

from .base import Backoff, ConnectionEvent, ConnectionState, EventHub, log_io, logger
from .capture import CaptureWriter
from .framing import Decoded, Framer
from .links import Connector, Link

__all__ = ["Backoff", "Heartbeat", "StreamTransport"]


@dataclass(frozen=True)
class Heartbeat:
    """Liveness check: every `interval` s run `probe` (if any; it fails by raising or by
    taking longer than `timeout`, default `interval`), and declare the link lost if the peer
    sent nothing for longer than `silence` s (if set)."""

    interval: float
    probe: Callable[[], Awaitable[Any]] | None = None
    silence: float | None = None
    timeout: float | None = None


_CLOSED = object()  # queued when the transport stops for good
_DROPPED = object()  # queued when a link drops while a request awaits its answer


class StreamTransport:
    """Frames payloads over links opened by `connector`, for one device named `device`.

    `receive()` raises the `FramingError` of a bad incoming frame and keeps the frames after
    it. A peer that goes away (end of stream, I/O error, failed heartbeat) starts a reconnect
    under `reconnect` (None: give up at once); `on_reconnect()` runs after each successful
    reconnect, while requests already work. When `reconnect` runs out of its limits, a `lost`
    event is published and every pending and later call raises ConnectionLost. A half frame
    followed by `frame_gap` seconds of silence is discarded and reported.
    """

    def __init__(
        self,
        connector: Connector,
        framer: Framer,
        *,
        device: str,
        reconnect: Backoff | None = None,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
        heartbeat: Heartbeat | None = None,
        on_event: Callable[[ConnectionEvent], None] | None = None,
        capture: str | Path | None = None,
        frame_gap: float | None = 1.0,
        max_queue: int = 1024,
    ) -> None:
        self.device = device
        self.connector = connector
        self.framer = framer
        self.reconnect = reconnect
        self.on_reconnect = on_reconnect
        self.heartbeat = heartbeat
        self.frame_gap = frame_gap
        self.framing_errors = 0
        self.discarded = 0
        self._hub = EventHub(on_event)
        self._capture = CaptureWriter(capture, device) if capture is not None else None
        self._max_queue = max_queue
        self._rx: asyncio.Queue[bytes | DeviceError | object] = asyncio.Queue(max_queue)
        self._link: Link | None = None
        self._connected = asyncio.Event()
        self._gone: str | None = None  # why the transport stopped, once it has
        self._supervisor: asyncio.Task[None] | None = None
        self._write_lock = asyncio.Lock()
        self._request_lock = asyncio.Lock()
        self._last_rx = 0.0
        self._in_request = False

    @property
    def connected(self) -> bool:
        """Whether a link is up right now."""
        return self._connected.is_set() and self._gone is None

    async def open(self) -> None:
        """Connect; raises ConnectionLost if the first attempt fails."""
        if self._supervisor is not None:
            return
        try:
            link = await self.connector()
        except (OSError, TimeoutError) as exc:
            raise ConnectionLost(
                self.device,
                "open",
                f"cannot connect to {self.connector}: {exc}",
                hint="check that the device is on, its address and cabling",
            ) from exc
        self._gone = None
        self._rx = asyncio.Queue(self._max_queue)
        if self._capture is not None:
            self._capture.open()
        self._up(link)
        self._supervisor = asyncio.create_task(self._supervise(link), name=f"{self.device} link")

    async def close(self) -> None:
        """Disconnect and stop reconnecting; pending and later receives raise ConnectionLost."""
        task, self._supervisor = self._supervisor, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if self._link is not None:  # the supervisor was cancelled before it ever ran
            await self._link.aclose()
            self._link = None
        if self._gone is None:
            self._finish("transport closed")
        self._hub.end()
        if self._capture is not None:
            self._capture.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def send(self, payload: bytes, *, operation: str = "send") -> None:
        """Frame and send `payload`; raises ConnectionLost if no link is up."""
        try:
            frame = self.framer.encode(payload)
        except FramingError as exc:
            raise exc.bind(self.device, operation) from None
        link = self._link
        if link is None or not self.connected:
            raise ConnectionLost(
                self.device, operation, "not connected", hint="wait for the reconnect"
            )
        try:
            async with self._write_lock:
                await link.write(frame)
        except OSError as exc:
            raise ConnectionLost(self.device, operation, f"write failed: {exc}") from exc
        log_io(self.device, "->", frame)
        if self._capture is not None:
            self._capture.record("out", payload)

    async def receive(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - the per-request timeout is the API
        *,
        operation: str = "receive",
    ) -> bytes:
        """The next incoming payload; DeviceTimeout after `timeout` s, the FramingError of a
        bad frame, or ConnectionLost once the transport is closed or gave up."""
        try:
            async with asyncio.timeout(timeout):
                return await self._next(operation)
        except TimeoutError:
            raise DeviceTimeout(self.device, operation, timeout or 0.0) from None

    async def _next(self, operation: str, *, in_request: bool = False) -> bytes:
        if self._rx.empty() and self._gone is not None:
            raise ConnectionLost(self.device, operation, self._gone)
        item = await self._rx.get()
        while item is _DROPPED and not in_request:
            item = await self._rx.get()
        if isinstance(item, bytes):
            return item
        if item is _DROPPED:
            raise ConnectionLost(
                self.device,
                operation,
                "the link dropped before the answer came",
                hint="the device may or may not have acted on the request; check before retrying",
            )
        if item is _CLOSED:
            assert self._gone is not None
            raise ConnectionLost(self.device, operation, self._gone)
        if isinstance(item, FramingError):
            raise item.bind(self.device, operation)
        raise AssertionError(item)  # pragma: no cover

    async def request(
        self,
        payload: bytes,
        timeout: float,  # noqa: ASYNC109 - the per-request timeout is the API
        *,
        operation: str = "request",
        discard_stale: bool = True,
    ) -> bytes:
        """Send `payload` and return the next payload; one request at a time. While
        reconnecting it waits for the link, all within `timeout`. Payloads already queued
        (late replies to timed-out requests) are discarded first unless `discard_stale` is
        False; they are logged and counted in `discarded`."""
        async with self._request_lock:
            try:
                async with asyncio.timeout(timeout):
                    await self._wait_connected(operation)
                    if discard_stale:
                        self._discard_queued(operation)
                    await self.send(payload, operation=operation)
                    self._in_request = True
                    try:
                        return await self._next(operation, in_request=True)
                    finally:
                        self._in_request = False
            except TimeoutError:
                raise DeviceTimeout(self.device, operation, timeout) from None

    async def _iterate(self) -> AsyncIterator[bytes]:
        while True:
            try:
                yield await self.receive(operation="iterate")
            except FramingError as exc:
                logger.warning("%s", exc)
            except ConnectionLost:
                return

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Incoming payloads until the transport closes; bad frames are logged and skipped."""
        return self._iterate()

    def events(self) -> AsyncIterator[ConnectionEvent]:
        """Connection state changes from now until the transport closes."""
        return self._hub.subscribe()

    def _discard_queued(self, operation: str) -> None:
        while not self._rx.empty():
            item = self._rx.get_nowait()
            if item is _DROPPED:
                continue
            if item is _CLOSED:
                self._rx.put_nowait(item)
                return
            self.discarded += 1
            logger.warning("%s: %s: discarded stale input %r", self.device, operation, item)

    async def _wait_connected(self, operation: str) -> None:
        while not self.connected:
            if self._gone is not None:
                raise ConnectionLost(self.device, operation, self._gone)
            await self._connected.wait()

    def _publish(self, state: ConnectionState, detail: str, attempts: int = 0) -> None:
        self._hub.publish(self.device, ConnectionEvent(state, detail, attempts))

    def _finish(self, reason: str) -> None:
        self._gone = reason
        self._connected.set()  # wake waiters so they see _gone
        with contextlib.suppress(asyncio.QueueFull):
            self._rx.put_nowait(_CLOSED)

    def _up(self, link: Link) -> None:
        self._link = link
        self.framer.reset()
        self._last_rx = time.monotonic()
        self._connected.set()
        self._publish(ConnectionState.CONNECTED, link.description)

    async def _supervise(self, link: Link) -> None:
        reconnected = False
        while True:
            reason = await self._run(link, reconnected)
            self._publish(ConnectionState.DISCONNECTED, reason)
            if self.reconnect is None:
                self._finish(f"link lost: {reason}")
                return
            new_link, attempts = await self._reconnect(self.reconnect)
            if new_link is None:
                detail = (
                    f"gave up reconnecting after {attempts} attempts "
                    f"({self.reconnect.limits()}); link lost: {reason}"
                )
                self._publish(ConnectionState.LOST, detail, attempts)
                self._finish(detail)
                return
            self._up(new_link)
            link, reconnected = new_link, True

    async def _reconnect(self, policy: Backoff) -> tuple[Link | None, int]:
        attempt = 0
        for attempt, delay in enumerate(policy.delays(), 1):
            self._publish(
                ConnectionState.RECONNECTING, f"attempt {attempt} in {delay:.3g} s", attempt
            )
            await asyncio.sleep(delay)
            try:
                return await self.connector(), attempt
            except (OSError, TimeoutError) as exc:
                logger.info("%s: reconnect attempt %d failed: %s", self.device, attempt, exc)
        return None, attempt

    async def _run(self, link: Link, reconnected: bool) -> str:
        """Serve one link until it is lost; returns why."""
        tasks: dict[asyncio.Task[str | None], str] = {
            asyncio.create_task(self._read_loop(link)): "reader"
        }
        if self.heartbeat is not None:
            tasks[asyncio.create_task(self._heartbeat_loop(self.heartbeat))] = "heartbeat"
        if reconnected and self.on_reconnect is not None:
            tasks[asyncio.create_task(self._call_on_reconnect())] = "on_reconnect"
        try:
            while True:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    del tasks[task]
                    reason = task.result()
                    if reason is not None:
                        return reason
        finally:
            self._connected.clear()
            self._link = None
            for task in tasks:
                task.cancel()
            try:
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                await link.aclose()
                if self._in_request:
                    with contextlib.suppress(asyncio.QueueFull):
                        self._rx.put_nowait(_DROPPED)

    async def _call_on_reconnect(self) -> str | None:
        assert self.on_reconnect is not None
        try:
            await self.on_reconnect()
        except Exception as exc:
            logger.warning("%s: on_reconnect failed: %s", self.device, exc)
            return f"on_reconnect failed: {exc}"
        return None

    async def _read_loop(self, link: Link) -> str:
        framer = self.framer
        while True:
            try:
                if framer.pending and self.frame_gap is not None:
                    try:
                        async with asyncio.timeout(self.frame_gap):
                            data = await link.read()
                    except TimeoutError:
                        error = framer.reset()
                        if error is not None:
                            await self._deliver(error)
                        continue
                else:
                    data = await link.read()
            except OSError as exc:
                return f"read failed: {exc}"
            if not data:
                return "peer closed the connection"
            self._last_rx = time.monotonic()
            log_io(self.device, "<-", data)
            for item in framer.feed(data):
                await self._deliver(item)

    async def _deliver(self, item: Decoded) -> None:
        if isinstance(item, FramingError):
            self.framing_errors += 1
            item = item.bind(self.device, "receive")
            logger.debug("%s", item)
            if self._capture is not None:
                self._capture.record("in", item.raw, item.reason)
        elif self._capture is not None:
            self._capture.record("in", item)
        await self._rx.put(item)

    async def _heartbeat_loop(self, heartbeat: Heartbeat) -> str:
        """Declares the link lost on silence or on two failed probes in a row. A round in which
        this loop itself ran late (a busy event loop, not a silent peer) gives no verdict."""
        tick = heartbeat.interval
        if heartbeat.silence is not None:
            tick = min(tick, heartbeat.silence / 4)
        next_probe = time.monotonic() + heartbeat.interval
        misses = 0
        while True:
            before = time.monotonic()
            await asyncio.sleep(tick)
            now = time.monotonic()
            if now - before > 2 * tick + 0.05:
                continue  # the loop was busy: data may be waiting unread in the socket
            if heartbeat.silence is not None and now - self._last_rx > heartbeat.silence:
                return f"peer silent for more than {heartbeat.silence:g} s"
            if heartbeat.probe is not None and now >= next_probe:
                limit = heartbeat.timeout or heartbeat.interval
                started = time.monotonic()
                try:
                    async with asyncio.timeout(limit):
                        await heartbeat.probe()
                except Exception as exc:
                    if isinstance(exc, TimeoutError) and time.monotonic() - started > 2 * limit:
                        continue  # the loop stalled during the probe: no verdict
                    misses += 1
                    if misses >= 2:
                        return f"heartbeat failed twice: {exc or type(exc).__name__}"
                    continue  # probe again at the next tick
                misses = 0
                next_probe = time.monotonic() + heartbeat.interval
