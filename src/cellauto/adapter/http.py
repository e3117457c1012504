"""The adapter base of the HTTP family: a device reached with JSON over HTTP(S) and a numbered
WebSocket event stream (`cellauto.transport.http`).

A device subclasses `HttpDevice` and writes what is its own: `identify()` (the identity and
the newest event seq, read at connect), `apply_event(event)` (one stream event, applied once,
in order) and the `Device` hooks, which call `request(...)`. Connection, bearer token,
TLS, retries, resume after a reconnect and lost-range events come from here.

A command whose effect the device also reports as events answers with the seq of its last
event (``"event_seq"``); `applied(seq)` waits until the stream has applied it, so the command
returns once its effect has been applied.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from cellauto.adapter.options import (
    CAPTURE,
    CONNECTION,
    HEARTBEAT,
    TIMEOUT,
    Options,
    Values,
    integer,
    number,
    reconnect_policy,
    text,
)
from cellauto.driver import Device, TimeSource
from cellauto.errors import ConnectionLost, DeviceError
from cellauto.registry import DeviceUrl
from cellauto.schema import DeviceInfo, DeviceProfile
from cellauto.secrets import bearer_token
from cellauto.transport.base import ConnectionEvent
from cellauto.transport.http import (
    EventStream,
    HttpClient,
    HttpReplay,
    ReplayStream,
    StreamEvent,
    new_idempotency_key,
)
from cellauto.transport.opcua_capture import Capture

__all__ = ["CA_FILE", "HTTP_OPTIONS", "REQUEST_TIMEOUT", "RETRIES", "HttpDevice"]

REQUEST_TIMEOUT = number("request_timeout", 5.0, "s per HTTP request attempt", minimum=0.001)
RETRIES = integer("retries", 2, "extra attempts of a request that may be repeated")
CA_FILE = text("ca_file", "", "path: a PEM trust anchor for https (else the system's)")
HTTP_OPTIONS = CONNECTION | Options(REQUEST_TIMEOUT, RETRIES, CA_FILE)
"""`CONNECTION` plus ``request_timeout``, ``retries`` and ``ca_file``. The bearer token is never
a URL option: it comes from `cellauto.secrets.bearer_token` (device id, then host)."""


class HttpDevice(Device):
    """A device of the HTTP family (see the module doc). URLs:
    ``<kind>+http://host:port`` or ``<kind>+https://host:port``."""

    transports: ClassVar[tuple[str, ...]] = ("http", "https", "replay")
    options: ClassVar[Options] = HTTP_OPTIONS
    events_path: ClassVar[str] = "/events"

    def __init__(
        self,
        device_id: str,
        profile: DeviceProfile,
        url: DeviceUrl | None = None,
        *,
        time: TimeSource | None = None,
    ) -> None:
        values = self.options.parse(device_id, url.options if url is not None else {})
        super().__init__(device_id, profile, timeout=values[TIMEOUT], time=time)
        self.values: Values = values
        if url is None or url.transport not in self.transports:
            given = url.transport if url is not None else "none"
            raise DeviceError(
                device_id, "connect", f"no transport {given!r}", hint="use http or https"
            )
        self._progress = asyncio.Event()
        self._capture: Capture | None = None
        if url.transport == "replay":
            replay = HttpReplay(url.address, device=device_id)
            self.client: HttpClient = replay.client()
            self.stream: EventStream = ReplayStream(
                replay,
                self.client,
                on_event=self._on_stream_event,
                on_lost=self.report_lost_events,
                on_connection=self._on_connection,
            )
            return
        if values.given(CAPTURE):
            self._capture = Capture(values[CAPTURE])
        host = url.address.split("/")[0]
        token = bearer_token(device_id) or bearer_token(host.rpartition(":")[0] or host)
        self.client = HttpClient(
            device_id,
            f"{url.transport}://{host}",
            token=token,
            timeout=values[REQUEST_TIMEOUT],
            retries=values[RETRIES],
            ca_file=values[CA_FILE] or None,
            capture=self._capture,
        )
        self.stream = EventStream(
            self.client,
            self.events_path,
            on_event=self._on_stream_event,
            on_lost=self._on_lost,
            on_connection=self._on_connection,
            on_reconnect=self.on_reconnect,
            reconnect=reconnect_policy(values, initial=0.05, max_delay=1.0, seed=0),
            heartbeat=values[HEARTBEAT],
        )

    # --- what a device writes ------------------------------------------------------------------

    async def identify(self) -> tuple[DeviceInfo, int]:
        """The device's identity and the seq of its newest event (read at connect)."""
        raise NotImplementedError

    async def apply_event(self, event: StreamEvent) -> None:
        """Apply one stream event (called once per event, in seq order)."""
        raise NotImplementedError

    async def on_reconnect(self) -> None:
        """Called after the stream resumed (events missed meanwhile follow on the stream)."""

    # --- the machinery -------------------------------------------------------------------------

    async def _connect(self) -> DeviceInfo:
        if self._capture is not None:
            self._capture.record(
                {"op": "open", "base_url": self.client.base_url, "tls": self.client.tls}
            )
        await self.client.open()
        info, newest = await self.identify()
        await self.stream.start(newest)
        await self.after_connect()
        return info

    async def after_connect(self) -> None:
        """Read the device's state and anything else the stream will only report on change."""

    async def _close(self) -> None:
        await self.stream.close()
        await self.client.close()
        if self._capture is not None:
            self._capture.close()

    def _on_connection(self, event: ConnectionEvent) -> None:
        self.report_connection(event.state, event.detail, event.attempts)
        self._progress.set()

    async def _on_stream_event(self, event: StreamEvent) -> None:
        if self._capture is not None:
            self._capture.record(
                {"op": "event", "dir": "in", "seq": event.seq, "kind": event.kind}
                | {"time": event.time, "data": event.data}
            )
        await self.apply_event(event)
        self._progress.set()

    def _on_lost(self, first: int, last: int) -> None:
        if self._capture is not None:
            self._capture.record({"op": "lost", "dir": "in", "first": first, "last": last})
        self.report_lost_events(first, last)

    async def applied(self, seq: int, operation: str) -> None:
        """Wait until the stream has applied event `seq` (ConnectionLost if it ends first)."""
        while self.stream.last_seq < seq:
            if self.stream.ended.is_set():
                raise ConnectionLost(self.device_id, operation, "the event stream ended")
            self._progress.clear()
            waiter = asyncio.ensure_future(self._progress.wait())
            ended = asyncio.ensure_future(self.stream.ended.wait())
            try:
                await asyncio.wait({waiter, ended}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                ended.cancel()

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        idempotent_post: bool = False,
    ) -> Any:
        """One request through the client; ``idempotent_post`` sends a fresh Idempotency-Key
        (kept across the retries of this call), so a POST may be retried without acting twice.
        An answer carrying ``event_seq`` returns once that event has been applied."""
        key = new_idempotency_key() if idempotent_post else None
        answer = await self.client.request(
            method, path, operation=operation, json_body=body, params=params, idempotency_key=key
        )
        if isinstance(answer, dict) and isinstance(answer.get("event_seq"), int):
            await self.applied(int(answer["event_seq"]), operation)
        return answer
