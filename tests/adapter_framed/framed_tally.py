"""`tally`: a made-up device of the framed-stream family, small enough to read in one go, to show
that a new device on `cellauto.adapter.FramedEventDevice` is its codec and its hooks.

The wire: one ASCII line per payload, ``<kind> <seq> <VERB> key=value ...`` (no spaces in
values). The host sends `Q` requests; the device answers `A` (reply) or `X` (refusal, ``code=``)
and pushes `V` events (live, and logged ones before the reply to ``LOG from=<seq>``).

    Q HELLO           A last=<newest event seq>
    Q STATE           A state=<cellauto state>
    Q PING            A last=<newest event seq>
    Q BUMP            V COUNT n=<count> (to every session), then A
    Q LOG from=<seq>  V COUNT ... for each logged event from <seq> on, then A lost=<count>

The adapter side (`TallyCodec`, `TallyAdapter`) and the simulator side (`SimulatedTally`, on the
simulator family base) each read the wire with their own few lines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from cellauto.adapter import FramedEventDevice, Incoming, ProtocolTables, ReadBack
from cellauto.errors import ProtocolError
from cellauto.registry import DeviceUrl
from cellauto.schema import (
    Alarm,
    DeviceInfo,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Sample,
)
from cellauto.sim.clock import Clock
from cellauto.sim.device import EventLog
from cellauto.sim.families.framed import FramedSimDevice, Refusal, Request, Session
from cellauto.state import State, StateCommand
from cellauto.transport import LineFramer
from reference_device import PROFILE

ROLES: dict[str, Literal["reply", "refusal", "event"]] = {
    "A": "reply",
    "X": "refusal",
    "V": "event",
}


# --- the adapter ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One payload as the adapter read it."""

    kind: str
    seq: int
    verb: str
    fields: dict[str, str] = field(default_factory=dict)


class TallyCodec:
    """The tally wire as a `FramedCodec`."""

    wrap: int | None = None

    def framer(self) -> LineFramer:
        return LineFramer(b"\n")

    def request(self, seq: int, verb: str, fields: Mapping[str, str]) -> bytes:
        return " ".join(["Q", str(seq), verb, *(f"{k}={v}" for k, v in fields.items())]).encode()

    def decode(self, payload: bytes) -> Incoming[Line]:
        if not payload.isascii():
            raise ProtocolError("tally", "decode", f"non-ASCII payload {payload[:40]!r}")
        kind, _, rest = payload.decode("ascii").partition(" ")
        seq, _, rest = rest.partition(" ")
        verb, *pairs = rest.split(" ")
        if kind not in ROLES or not seq.isdigit() or not verb:
            raise ProtocolError("tally", "decode", f"unreadable payload {payload[:40]!r}")
        fields = {key: value for key, _, value in (pair.partition("=") for pair in pairs)}
        return Incoming(
            ROLES[kind], int(seq), Line(kind, int(seq), verb, fields), fields.get("code", "")
        )


class TallyAdapter(FramedEventDevice[Line]):
    """The tally device: `counts` holds every COUNT event applied, in order."""

    kind = "tally"
    codec = TallyCodec()
    resend: ClassVar[dict[str, float]] = {"BUSY": 0.0}

    def __init__(self, url: DeviceUrl) -> None:
        super().__init__("tally-1", PROFILE, url)
        self.counts: list[tuple[int, int]] = []
        """(event seq, count) of every COUNT event applied, in order."""

    @classmethod
    def vocabulary(cls) -> ProtocolTables:
        errors = {"BUSY": ("busy", "resend"), "FULL": ("the tally is full", "report")}
        return ProtocolTables("tally", 1, {}, {}, errors, {})

    async def open_session(self, operation: str) -> tuple[DeviceInfo, int]:
        hello = await self.request("HELLO", {}, operation=operation)
        info = DeviceInfo(manufacturer="cellauto", model="tally", serial_number="1")
        return info, int(hello.fields["last"])

    async def sync(self, operation: str) -> None:
        reply = await self.request("STATE", {}, operation=operation)
        await self.report_state(State.parse(reply.fields["state"]))

    async def probe(self) -> int | None:
        return int((await self.request("PING", {}, operation="heartbeat")).fields["last"])

    async def read_log(self, first: int) -> ReadBack[Line]:
        reply = await self.request("LOG", {"from": str(first)}, operation="log read-back")
        lost = int(reply.fields["lost"])
        return ReadBack(lost=(first, first + lost - 1) if lost else None)

    async def apply_event(self, seq: int, message: Line) -> None:
        self.counts.append((seq, int(message.fields["n"])))

    async def bump(self) -> None:
        """Count one; returns once the COUNT event is applied."""
        await self.request("BUMP", {}, operation="bump")
        await self.sequencer.caught_up()

    async def _read(self, channel: str) -> Sample:
        raise NotImplementedError

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        raise NotImplementedError

    async def _send_state_command(self, command: StateCommand) -> None:
        raise NotImplementedError

    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        raise NotImplementedError


# --- the simulator -------------------------------------------------------------------------------


class SimulatedTally(FramedSimDevice):
    """The tally device on the simulator family base; `hidden` events are logged but not sent
    live (a lost frame), `limit` makes BUMP refused with FULL once reached."""

    UNREADABLE: ClassVar[str] = "BAD"
    UNKNOWN_VERB: ClassVar[str] = "VERB"
    REQUEST_KIND: ClassVar[str] = "Q"
    SESSION_OPENER: ClassVar[str] = "HELLO"

    hidden = 0
    limit = 1000
    requests: list[tuple[str, int]]
    """(verb, seq) of every request read."""

    def __init__(self, clock: Clock, log: EventLog) -> None:
        super().__init__(clock, log)
        self.requests = []

    def framer(self) -> LineFramer:
        return LineFramer(b"\n")

    def read(self, payload: bytes) -> Request:
        kind, seq, verb, *pairs = payload.decode("ascii").split(" ")
        fields = {key: value for key, _, value in (pair.partition("=") for pair in pairs)}
        self.requests.append((verb, int(seq)))
        return Request(kind, int(seq), verb, fields)

    def reply_frame(self, request: Request, fields: Mapping[str, str]) -> bytes:
        return self._line("A", request.seq, request.verb, fields)

    def refusal_frame(self, seq: int, code: str, reason: str) -> bytes:
        return self._line("X", seq, "NAK", {"code": code})

    def event_frame(self, seq: int, verb: str, fields: Mapping[str, str]) -> bytes:
        return self._line("V", seq, verb, fields)

    @staticmethod
    def _line(kind: str, seq: int, verb: str, fields: Mapping[str, str]) -> bytes:
        return " ".join([kind, str(seq), verb, *(f"{k}={v}" for k, v in fields.items())]).encode()

    def do_hello(self, session: Session, request: Request) -> dict[str, str]:
        session.subs = None
        return {"last": str(self.log.seq)}

    def do_state(self, session: Session, request: Request) -> dict[str, str]:
        return {"state": "Running/Idle"}

    def do_ping(self, session: Session, request: Request) -> dict[str, str]:
        return {"last": str(self.log.seq)}

    def do_bump(self, session: Session, request: Request) -> dict[str, str]:
        if self.log.count >= self.limit:
            raise Refusal("FULL", "full")
        self.count()
        return {}

    def do_log(self, session: Session, request: Request) -> dict[str, str]:
        entries, lost = self.log.since(int(request.fields["from"]))
        for entry in entries:
            session.push(self.event_frame(entry.seq, entry.kind, entry.data))
        return {"lost": str(lost[1] - lost[0] + 1 if lost else 0)}

    def count(self) -> None:
        """One more: logged, and sent live unless `hidden` says to lose it."""
        if self.hidden:
            self.hidden -= 1
            self.log.append("COUNT", {"n": str(self.log.count + 1)})
            return
        self.publish("COUNT", {"n": str(self.log.count + 1)})
