"""A device's numbered event stream over a WebSocket, resumed from the last seen event after a
reconnect, delivered once each and in order.

The wire (cellauto's HTTP family, see docs/http.md): the client opens
``GET <path>?after=<seq>`` as a WebSocket (same bearer token as the REST calls); the device
sends one JSON text message per event, ``{"seq": n, "kind": ..., "time": ..., "data": {...}}``,
first every logged event after `seq`, then live ones. Where its log no longer holds some of
them it first sends ``{"kind": "lost", "from": a, "to": b}``. A message whose seq is not the
next one is a gap: the stream reconnects and resumes from the last applied event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from cellauto.errors import AuthenticationRefused, ConnectionLost, DeviceError
from cellauto.transport.base import Backoff, ConnectionEvent, ConnectionState, EventHub

from .client import HttpClient

__all__ = ["EventStream", "StreamEvent"]

logger = logging.getLogger("cellauto.transport.http")


@dataclass(frozen=True)
class StreamEvent:
    """One event of the stream as the device numbered it."""

    seq: int
    kind: str
    time: str
    data: dict[str, Any] = field(default_factory=dict)


class _Gap(Exception):
    pass


class EventStream:
    """The event stream of the device behind `client` at `path`.

    `on_event` is awaited for each event, in seq order, once; `on_lost(first, last)` for a
    range the device no longer held; `on_connection` gets every `ConnectionEvent` (one
    ``disconnected`` per outage); `on_reconnect` is awaited after each resumed connection.
    `heartbeat` (s, 0: off) pings the device and treats a missing pong as a dropped link.
    """

    def __init__(
        self,
        client: HttpClient,
        path: str,
        *,
        on_event: Callable[[StreamEvent], Awaitable[None]],
        on_lost: Callable[[int, int], object] | None = None,
        on_connection: Callable[[ConnectionEvent], None] | None = None,
        on_reconnect: Callable[[], Awaitable[None]] | None = None,
        reconnect: Backoff | None = None,
        heartbeat: float = 1.0,
    ) -> None:
        self.client = client
        self.device = client.device
        self.path = path
        self.on_event = on_event
        self.on_lost = on_lost
        self.on_reconnect = on_reconnect
        self.reconnect = reconnect or Backoff()
        self.heartbeat = heartbeat
        self.hub = EventHub(on_connection)
        self.last_seq = 0
        """The newest event applied (every one before it was applied or declared lost)."""
        self.received = 0
        """Events applied."""
        self.resumes = 0
        """Reconnects that resumed the stream."""
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.ended = asyncio.Event()
        """Set once the stream gave up (reconnect limits reached) or was closed."""

    def _url(self) -> str:
        base = self.client.base_url.replace("http", "ws", 1)
        return f"{base}{self.path}?after={self.last_seq}"

    async def _open_ws(self) -> aiohttp.ClientWebSocketResponse:
        return await self.client.session.ws_connect(
            self._url(),
            ssl=self.client.ssl,
            heartbeat=self.heartbeat or None,
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self.client.timeout),
        )

    async def start(self, after: int) -> None:
        """Connect and start delivering events newer than `after`; raises `ConnectionLost`
        (or `AuthenticationRefused`) if the first connection fails."""
        self.last_seq = after
        try:
            async with asyncio.timeout(self.client.timeout):
                self._ws = await self._open_ws()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._refusal(exc) from None
        self.hub.publish(self.device, ConnectionEvent(ConnectionState.CONNECTED, self._url()))
        self._task = asyncio.create_task(self._run(), name=f"{self.device} event stream")

    def _refusal(self, exc: BaseException) -> DeviceError:
        if isinstance(exc, aiohttp.WSServerHandshakeError) and exc.status in (401, 403):
            return AuthenticationRefused(
                self.device,
                "open event stream",
                exc.status,
                "Unauthorized" if exc.status == 401 else "Forbidden",
                hint=f"set CELLAUTO_TOKEN_<NAME> for {self.device} (see cellauto.secrets)",
            )
        return ConnectionLost(self.device, "open event stream", f"{type(exc).__name__}: {exc}")

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._ws is not None:
            await self._ws.close()
        self.hub.end()
        self.ended.set()

    async def _run(self) -> None:
        try:
            while True:
                ws = self._ws
                assert ws is not None
                try:
                    await self._read(ws)
                except _Gap as gap:
                    logger.info("%s: event stream gap (%s): resuming", self.device, gap)
                except (aiohttp.ClientError, ValueError, KeyError, TypeError) as exc:
                    logger.info("%s: event stream dropped: %s", self.device, exc)
                with contextlib.suppress(aiohttp.ClientError):
                    await ws.close()
                self._ws = None
                if self._closing:
                    return
                self.hub.publish(
                    self.device,
                    ConnectionEvent(ConnectionState.DISCONNECTED, "event stream dropped"),
                )
                if not await self._resume():
                    return
        finally:
            if not self._closing:
                self.ended.set()

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for message in ws:
            if message.type is not aiohttp.WSMsgType.TEXT:
                if message.type is aiohttp.WSMsgType.ERROR:
                    raise aiohttp.ClientConnectionError(str(ws.exception()))
                continue
            item = json.loads(message.data)
            if item.get("kind") == "lost" and "seq" not in item:
                first, last = int(item["from"]), int(item["to"])
                if last > self.last_seq:
                    self.last_seq = last
                    if self.on_lost is not None:
                        self.on_lost(max(first, 1), last)
                continue
            seq = int(item["seq"])
            if seq <= self.last_seq:
                continue  # delivered already (a resume overlapping what we had)
            if seq != self.last_seq + 1:
                raise _Gap(f"expected event {self.last_seq + 1}, got {seq}")
            event = StreamEvent(seq, str(item["kind"]), str(item["time"]), dict(item["data"]))
            await self.on_event(event)
            self.last_seq = seq
            self.received += 1

    async def _resume(self) -> bool:
        attempts = 0
        for delay in self.reconnect.delays():
            attempts += 1
            self.hub.publish(
                self.device,
                ConnectionEvent(ConnectionState.RECONNECTING, f"attempt {attempts}", attempts),
            )
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(self.client.timeout):
                    self._ws = await self._open_ws()
            except (aiohttp.ClientError, TimeoutError) as exc:
                logger.debug("%s: reconnect failed: %s", self.device, exc)
                continue
            self.resumes += 1
            self.hub.publish(
                self.device,
                ConnectionEvent(ConnectionState.CONNECTED, f"resumed after {self.last_seq}"),
            )
            if self.on_reconnect is not None:
                try:
                    await self.on_reconnect()
                except DeviceError as exc:
                    logger.warning("%s: after reconnect: %s", self.device, exc)
            return True
        self.hub.publish(
            self.device,
            ConnectionEvent(
                ConnectionState.LOST,
                f"event stream gave up ({self.reconnect.limits()})",
                attempts,
            ),
        )
        return False
