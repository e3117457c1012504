"""The framed request/reply family: a byte stream of framed payloads, numbered host requests
answered once each (a repeated request seq gets the cached answer), and numbered device events
pushed to every session that subscribed to them and kept in the device's `EventLog`.

A device subclasses `FramedSimDevice`, provides its codec (`framer`, `read`, and the three frame
builders) and its refusal codes, and answers each verb in a ``do_<verb>(session, request)``
method returning the reply fields, or raising `Refusal`. Request handling is synchronous: a
request is read, handled and answered as one atomic step of virtual time. A refusal always fits
a frame: its reason is cut to `MAX_REASON` characters, and halved while the codec refuses to
frame it (a `refusal_frame` raises `Refusal` for a payload too long). `start()` holds a
max-speed clock until the first session and `close()` lets it go.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from cellauto.errors import FramingError
from cellauto.sim.clock import Clock
from cellauto.sim.device import ClockPin, EventLog
from cellauto.sim.servers.stream import ServerConnection
from cellauto.transport.framing import Framer


class Refusal(ValueError):
    """A request the device refuses: `code` (the vendor's NAK/status code), a readable
    `reason`, and the request `seq` it answers (0: unreadable)."""

    def __init__(self, code: str, reason: str, seq: int = 0) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.seq = seq


@dataclass(frozen=True)
class Request:
    """One payload as the device read it."""

    kind: str
    seq: int
    verb: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Session:
    """One host connection: its subscriptions (None: all), reply cache and outgoing queue."""

    conn: ServerConnection
    framer: Framer
    subs: frozenset[str] | None = frozenset()
    replies: OrderedDict[int, bytes] = field(default_factory=OrderedDict)
    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)

    def push(self, payload: bytes) -> None:
        """Queue one payload for this session."""
        self.queue.put_nowait(payload)

    async def write_loop(self) -> None:
        while True:
            payload = await self.queue.get()
            await self.conn.write(self.framer.encode(payload))


class FramedSimDevice(ABC):
    """The family base; see the module doc."""

    UNREADABLE: ClassVar[str]
    """Refusal code of a frame that cannot be read (the host resends it)."""
    UNKNOWN_VERB: ClassVar[str]
    """Refusal code of a verb the device does not know, or a payload that is not a request."""
    REQUEST_KIND: ClassVar[str]
    """The kind letter of host requests."""
    SESSION_OPENER: ClassVar[str]
    """The verb that opens a session: it forgets the cached replies and is never answered
    from the cache."""
    MISSING_FIELD: ClassVar[str]
    """Refusal code of a request without a field its verb requires (`require`)."""
    REPLY_CACHE: ClassVar[int] = 64
    MAX_REASON: ClassVar[int] = 200
    """Characters of a refusal's reason at most (a longer one is cut, ending in "...")."""

    def __init__(self, clock: Clock, log: EventLog) -> None:
        self.clock = clock
        self.log = log
        self.sessions: list[Session] = []
        self.naks: list[str] = []
        """Codes to refuse the next requests with, whatever they are (fault injection)."""
        self.start_pin = ClockPin(clock)

    def start(self) -> None:
        """At speed=max, hold virtual time until the first session: a seeded run then does not
        depend on how long the client took to come, and an idle simulator burns no CPU."""
        self.start_pin.hold()

    async def close(self) -> None:
        """Let the clock go."""
        self.start_pin.release()

    # --- the codec (device-specific) -----------------------------------------------------------

    @abstractmethod
    def framer(self) -> Framer:
        """A fresh framer for one connection."""

    @abstractmethod
    def read(self, payload: bytes) -> Request:
        """Read one payload; `Refusal` with the code that fits if it cannot be read."""

    @abstractmethod
    def reply_frame(self, request: Request, fields: Mapping[str, str]) -> bytes:
        """The payload answering `request` with `fields`."""

    @abstractmethod
    def refusal_frame(self, seq: int, code: str, reason: str) -> bytes:
        """The payload refusing request `seq` with `code`; `Refusal` if it would not fit a
        frame (`refuse` then cuts the reason)."""

    @abstractmethod
    def event_frame(self, seq: int, verb: str, fields: Mapping[str, str]) -> bytes:
        """The payload of live event `seq`."""

    # --- events ------------------------------------------------------------------------------

    def publish(self, verb: str, fields: dict[str, str], channel: str | None = None) -> int:
        """Log an event and push it to every session that wants it; returns its seq."""
        entry = self.log.append(verb, fields)
        payload = self.event_frame(entry.seq, verb, fields)
        for session in self.sessions:
            if channel is None or session.subs is None or channel in session.subs:
                session.push(payload)
        return entry.seq

    def refuse(self, seq: int, code: str, reason: str) -> bytes:
        """The payload refusing request `seq` with `code`, its reason cut to fit."""
        text = reason if len(reason) <= self.MAX_REASON else reason[: self.MAX_REASON - 3] + "..."
        while True:
            try:
                return self.refusal_frame(seq, code, text)
            except Refusal:
                text = text[: len(text) // 2] + "..."

    # --- sessions and requests ---------------------------------------------------------------

    async def serve(self, conn: ServerConnection) -> None:
        """Serve one connection until it ends (the first one releases the start pin)."""
        session = Session(conn, self.framer())
        self.sessions.append(session)
        self.start_pin.release()
        writer = asyncio.ensure_future(session.write_loop())
        reader = self.framer()
        try:
            while data := await conn.read():
                for item in reader.feed(data):
                    with self.clock.busy():
                        self.handle(session, item)
        finally:
            self.sessions.remove(session)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    def handle(self, session: Session, item: bytes | FramingError) -> None:
        """Answer one framed item (or framing error) on `session`."""
        if isinstance(item, FramingError):
            session.push(self.refuse(0, self.UNREADABLE, item.reason))
            return
        try:
            request = self.read(item)
        except Refusal as exc:
            session.push(self.refuse(exc.seq, exc.code, exc.reason))
            return
        if request.kind != self.REQUEST_KIND:
            session.push(self.refuse(request.seq, self.UNKNOWN_VERB, "not a request"))
            return
        if self.naks:
            code = self.naks.pop(0)
            seq = 0 if code == self.UNREADABLE else request.seq
            session.push(self.refuse(seq, code, "injected"))
            return
        if request.verb != self.SESSION_OPENER and request.seq in session.replies:
            session.push(session.replies[request.seq])
            return
        if request.verb == self.SESSION_OPENER:
            session.replies.clear()
        try:
            answer = self.reply_frame(request, self.dispatch(session, request))
        except Refusal as exc:
            answer = self.refuse(request.seq, exc.code, exc.reason)
        session.replies[request.seq] = answer
        while len(session.replies) > self.REPLY_CACHE:
            session.replies.popitem(last=False)
        session.push(answer)

    def dispatch(self, session: Session, request: Request) -> dict[str, str]:
        """Call ``do_<verb>`` for the request; `Refusal` if the verb is unknown."""
        handler: Callable[[Session, Request], dict[str, str]] | None = getattr(
            self, f"do_{request.verb.lower()}", None
        )
        if handler is None:
            raise Refusal(self.UNKNOWN_VERB, f"unknown verb {request.verb}")
        return handler(session, request)

    def require(self, request: Request, key: str) -> str:
        """A required field, or `Refusal` with `MISSING_FIELD` naming it."""
        if key not in request.fields:
            raise Refusal(self.MISSING_FIELD, f"{request.verb}: missing field {key}")
        return request.fields[key]
