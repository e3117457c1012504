"""The adapter base of the framed-stream family: a device on a byte stream (serial, TCP, or a
replayed capture) of framed payloads, with numbered host requests answered once each and
numbered device events kept in a log the host can read back (ADR 0028).

A device subclasses `FramedEventDevice`, gives it its codec (a `FramedCodec`: framer, request
encoder, and a decoder telling replies, refusals and events apart) and the refusal codes that
mean "resend", and writes what is its own: `open_session` (identify and subscribe),
`sync` (what the stream reports only on change), `read_log`, `probe`, `apply_event` and the
`Device` hooks, which call `request(...)`. Transport, options, heartbeat, reconnect, capture and
replay, the request/reply session (`FramedLink`) and the `EventSequencer` come from here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Generic, Literal, Protocol, TypeVar

from cellauto.adapter.options import (
    CAPTURE,
    CONNECTION,
    HEARTBEAT,
    TIMEOUT,
    Options,
    Values,
    host_port,
    integer,
    number,
    reconnect_policy,
)
from cellauto.adapter.sequencer import EventSequencer, ReadBack
from cellauto.driver import Device, TimeSource
from cellauto.errors import (
    CommandRejected,
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    FramingError,
    ProtocolError,
)
from cellauto.protocols import ProtocolTables, load_protocol
from cellauto.registry import DeviceUrl
from cellauto.schema import DeviceInfo, DeviceProfile
from cellauto.state import State
from cellauto.transport import (
    ConnectionEvent,
    Framer,
    FrameTransport,
    Heartbeat,
    ReplayTransport,
    SerialConnector,
    StreamTransport,
    TcpConnector,
)

__all__ = [
    "BAUDRATE",
    "FRAMED_OPTIONS",
    "REQUEST_TIMEOUT",
    "RETRIES",
    "FramedCodec",
    "FramedEventDevice",
    "FramedLink",
    "Incoming",
]

M = TypeVar("M")

_log = logging.getLogger("cellauto.adapter.framed")

BAUDRATE = integer("baudrate", 115200, "serial line speed", minimum=1)
REQUEST_TIMEOUT = number("request_timeout", 2.0, "s per request attempt", minimum=0.001)
RETRIES = integer("retries", 3, "resends of one request")
FRAMED_OPTIONS = CONNECTION | Options(BAUDRATE, REQUEST_TIMEOUT, RETRIES)
"""`CONNECTION` plus ``baudrate`` (serial), ``request_timeout`` and ``retries``."""


@dataclass(frozen=True)
class Incoming(Generic[M]):
    """One payload from the device as its codec read it: a reply or a refusal (NAK) to request
    `seq` (0: the device could not read which), or event number `seq`."""

    role: Literal["reply", "refusal", "event"]
    seq: int
    message: M
    code: str = ""
    """A refusal's code (looked up in the protocol's error table)."""
    reason: str = ""
    """A refusal's reason as the device sent it (empty: the table's meaning is used)."""


class FramedCodec(Protocol[M]):
    """A device's wire grammar, sans-I/O; `M` is its message type."""

    @property
    def wrap(self) -> int | None:
        """Request and event seqs run 1..wrap, then 1 again (None: they never wrap)."""
        ...

    def framer(self) -> Framer:
        """A fresh framer for one connection."""
        ...

    def request(self, seq: int, verb: str, fields: Mapping[str, str]) -> bytes:
        """The payload of request `seq`; a `ProtocolError` if it cannot be expressed."""
        ...

    def decode(self, payload: bytes) -> Incoming[M]:
        """Read one payload; a `ProtocolError` if it breaks the grammar."""
        ...


class FramedLink(Generic[M]):
    """One session on a framed stream: requests and their replies, and events.

    One reader task owns the incoming stream: a reply or refusal resolves the one outstanding
    request (matched by seq, or seq 0); events are awaited through `on_event` in arrival order.
    A request is resent with the same seq on a timeout, a dropped link or a refusal code in
    `resend` (code -> pause before resending); any other refusal is a `CommandRejected` naming
    the device, the operation and the protocol table's meaning of the code.
    """

    def __init__(
        self,
        device: str,
        transport: FrameTransport,
        codec: FramedCodec[M],
        on_event: Callable[[Incoming[M]], Awaitable[None]],
        *,
        protocol: ProtocolTables,
        resend: Mapping[str, float],
        request_timeout: float,
        retries: int,
    ) -> None:
        self.device = device
        self.transport = transport
        self.codec = codec
        self.on_event = on_event
        self.protocol = protocol
        self.resend = resend
        self.request_timeout = request_timeout
        self.retries = retries
        self.framing_errors = 0
        """Incoming frames dropped as unreadable (bad checksum, half frames, bad grammar)."""
        self._seq = 0
        self._lock = asyncio.Lock()
        self._pending: tuple[int, asyncio.Future[Incoming[M]]] | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """Whether a request is in flight (its reply proves the line as a probe would)."""
        return self._lock.locked()

    async def open(self) -> None:
        """Open the transport and start reading."""
        await self.transport.open()
        self._reader = asyncio.create_task(self._read_loop(), name=f"{self.device} reader")

    async def close(self) -> None:
        """Stop reading and close the transport."""
        if self._reader is not None:
            self._reader.cancel()
        await self.transport.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def request(
        self, verb: str, fields: Mapping[str, str], *, operation: str, retries: int | None = None
    ) -> M:
        """Send one request and return its reply (resent up to `retries` times)."""
        limit = self.retries if retries is None else retries
        async with self._lock:
            wrap = self.codec.wrap
            self._seq = self._seq % wrap + 1 if wrap else self._seq + 1
            seq = self._seq
            payload = self.codec.request(seq, verb, fields)
            attempt = 0
            loop = asyncio.get_running_loop()
            while True:
                future: asyncio.Future[Incoming[M]] = loop.create_future()
                self._pending = (seq, future)
                try:
                    await self.transport.send(payload, operation=operation)
                    async with asyncio.timeout(self.request_timeout):
                        answer = await future
                except (TimeoutError, ConnectionLost) as exc:
                    attempt += 1
                    if attempt > limit:
                        if isinstance(exc, ConnectionLost):
                            raise
                        raise DeviceTimeout(
                            self.device, operation, self.request_timeout * attempt
                        ) from None
                    if isinstance(exc, ConnectionLost):
                        await asyncio.sleep(self.request_timeout / 4)
                    continue
                finally:
                    self._pending = None
                if answer.role == "reply":
                    return answer.message
                code = answer.code or "?"
                if code in self.resend and attempt < limit:
                    attempt += 1
                    await asyncio.sleep(self.resend[code])
                    continue
                reason = answer.reason or self.protocol.errors.get(code, ("refused", ""))[0]
                refusal = f"device answered NAK {code}: {reason}"
                raise CommandRejected(self.device, operation, refusal)

    async def _read_loop(self) -> None:
        while True:
            try:
                incoming = self.codec.decode(await self.transport.receive(operation="receive"))
            except ConnectionLost:
                return
            except FramingError as exc:
                self.framing_errors += 1
                _log.info("%s", exc)
                continue
            except ProtocolError as exc:
                self.framing_errors += 1
                _log.warning("%s: receive: %s", self.device, exc)
                continue
            if incoming.role == "event":
                try:
                    await self.on_event(incoming)
                except DeviceError as exc:
                    _log.warning("%s: cannot apply %s: %s", self.device, incoming, exc)
                continue
            pending = self._pending
            if pending and incoming.seq in (pending[0], 0) and not pending[1].done():
                pending[1].set_result(incoming)


class FramedEventDevice(Device, Generic[M]):
    """A device of the framed-stream family (see the module doc). URLs:
    ``<kind>+serial://<port>``, ``<kind>+tcp://<host>:<port>``, ``<kind>+replay://<capture>``.

    A subclass sets `codec` and `resend` and writes the hooks below. `request(...)` sends one
    request; `sequencer` applies events once each, in order, reading the log back on a gap, a
    reconnect or a probe that reports a newer event.
    """

    transports: ClassVar[tuple[str, ...]] = ("serial", "tcp", "replay")
    options: ClassVar[Options] = FRAMED_OPTIONS
    codec: FramedCodec[M]
    """The device's wire grammar (stateless: each connection gets a fresh framer)."""
    resend: ClassVar[Mapping[str, float]] = {}
    """Refusal codes that mean "resend the same seq" -> pause (s) before resending."""

    def __init__(
        self,
        device_id: str,
        profile: DeviceProfile,
        url: DeviceUrl | None = None,
        *,
        time: TimeSource | None = None,
        transport: FrameTransport | None = None,
    ) -> None:
        values = self.options.parse(device_id, url.options if url is not None else {})
        super().__init__(device_id, profile, timeout=values[TIMEOUT], time=time)
        self.option_values = values
        """The URL's options, parsed (a subclass reads its own options here)."""
        self.protocol = self.vocabulary()
        self.request_timeout = values[REQUEST_TIMEOUT]
        self.retries = values[RETRIES]
        self.sequencer: EventSequencer[M] = EventSequencer(
            device_id,
            self.apply_event,
            self.read_log,
            self.report_lost_events,
            wrap=self.codec.wrap,
        )
        self.link = FramedLink(
            device_id,
            transport or self._make_transport(url, values),
            self.codec,
            lambda event: self.sequencer.offer(event.seq, event.message),
            protocol=self.protocol,
            resend=self.resend,
            request_timeout=self.request_timeout,
            retries=self.retries,
        )

    @property
    def framing_errors(self) -> int:
        """Incoming frames dropped as unreadable (bad checksum, half frames, bad grammar)."""
        return self.link.framing_errors

    async def request(
        self, verb: str, fields: Mapping[str, str], *, operation: str, retries: int | None = None
    ) -> M:
        """One request and its reply (`FramedLink.request`)."""
        return await self.link.request(verb, fields, operation=operation, retries=retries)

    async def request_applied(self, verb: str, fields: Mapping[str, str], *, operation: str) -> M:
        """A request whose effect the device sends as events before its reply, on the same
        ordered stream: returns once every event seen by then (some perhaps held behind a gap)
        is applied. A state in the reply is never adopted."""
        reply = await self.request(verb, fields, operation=operation)
        await self.sequencer.caught_up()
        return reply

    def vendor_state(self, name: str, operation: str) -> State:
        """The cellauto state of the device's state `name`; ProtocolError if the vocabulary
        has none."""
        state = self.protocol.state(name)
        if state is None:
            raise ProtocolError(self.device_id, operation, f"unknown vendor state {name!r}")
        return state

    # --- what a device writes ------------------------------------------------------------------

    @classmethod
    def vocabulary(cls) -> ProtocolTables:
        """Vendor states, command names and refusal meanings: ``schemas/protocols/<kind>.toml``."""
        return load_protocol(cls.kind)

    @abstractmethod
    async def open_session(self, operation: str) -> tuple[DeviceInfo, int]:
        """Open a session (identify, subscribe to every event); return the identity and the
        seq of the device's newest event."""

    async def sync(self, operation: str) -> None:
        """Read what the event stream reports only on change (the state), after each session
        opened; events arriving meanwhile are already applied in order."""

    @abstractmethod
    async def read_log(self, first: int) -> ReadBack[M]:
        """The device's logged events from seq `first` on (`EventSequencer`'s read-back)."""

    async def probe(self) -> int | None:
        """The heartbeat's liveness request; return the device's newest event seq if the reply
        names it (a newer one than applied reads the log back)."""
        return None

    @abstractmethod
    async def apply_event(self, seq: int, message: M) -> None:
        """Apply event `seq` (called once per event, in seq order)."""

    # --- the machinery -------------------------------------------------------------------------

    def _make_transport(self, url: DeviceUrl | None, values: Values) -> FrameTransport:
        if url is None:
            raise DeviceError(self.device_id, "connect", "give a device URL or a transport")
        connector: SerialConnector | TcpConnector
        if url.transport == "serial":
            connector = SerialConnector(url.address, {"baudrate": values[BAUDRATE]})
        elif url.transport == "replay":
            return ReplayTransport(url.address, device=self.device_id)
        elif url.transport == "tcp":
            connector = TcpConnector(*host_port(self.device_id, url.address))
        else:
            raise DeviceError(
                self.device_id, "connect", f"no transport {url.transport!r}; use serial or tcp"
            )
        interval = values[HEARTBEAT]
        heartbeat = Heartbeat(
            interval=interval,
            probe=self._heartbeat,
            timeout=self.request_timeout * (self.retries + 1) + 1.0,
        )
        return StreamTransport(
            connector,
            self.codec.framer(),
            device=self.device_id,
            reconnect=reconnect_policy(values, initial=0.05, max_delay=1.0, seed=0),
            on_reconnect=self._on_reconnect,
            heartbeat=heartbeat if interval > 0 else None,
            on_event=self._on_connection,
            capture=Path(values[CAPTURE]) if values.given(CAPTURE) else None,
        )

    def _on_connection(self, event: ConnectionEvent) -> None:
        self.report_connection(event.state, event.detail, event.attempts)

    async def _connect(self) -> DeviceInfo:
        await self.link.open()
        info, newest = await self.open_session("connect")
        self.sequencer.start_at(newest)  # every later event reaches us
        await self.sync("connect")
        return info

    async def _close(self) -> None:
        await self.sequencer.close()
        await self.link.close()

    async def _on_reconnect(self) -> None:
        """A new link: a new session, then read back what was missed."""
        await self.open_session("reconnect")
        await self.sync("reconnect")
        await self.sequencer.read_back()

    async def _heartbeat(self) -> None:
        if self.link.busy:
            return  # a request in flight proves the line as well
        newest = await self.probe()
        if newest is not None:
            self.sequencer.behind(newest)
