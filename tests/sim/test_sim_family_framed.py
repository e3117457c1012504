"""The framed request/reply family base: reply cache by request seq, injected refusals, verb
dispatch, subscriptions; and the Prodigy as a member (a refusal always fits a frame)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, cast

from cellauto.profiles import load_profile
from cellauto.sim import DiscreteEventClock
from cellauto.sim.device import EventLog
from cellauto.sim.families.framed import FramedSimDevice, Refusal, Request, Session
from cellauto.transport import LineFramer
from cellauto.transport.framing import Framer
from cellauto_simulators.prodigy.server import SimulatedProdigy
from cellauto_simulators.prodigy.wire import MAX_PAYLOAD


class Echo(FramedSimDevice):
    """A toy member: ``H<seq> VERB [arg]`` in, ``R<seq> VERB n`` / ``N<seq> code reason`` out."""

    UNREADABLE: ClassVar[str] = "bad"
    UNKNOWN_VERB: ClassVar[str] = "verb"
    REQUEST_KIND: ClassVar[str] = "H"
    SESSION_OPENER: ClassVar[str] = "HELLO"

    def __init__(self) -> None:
        clock = DiscreteEventClock()
        super().__init__(clock, EventLog(clock))
        self.calls = 0

    def framer(self) -> Framer:
        return LineFramer(b"\n")

    def read(self, payload: bytes) -> Request:
        head, _, arg = payload.decode().partition(" ")
        verb, _, rest = arg.partition(" ")
        if len(head) < 2 or not head[1:].isdigit():
            raise Refusal(self.UNREADABLE, "no seq")
        return Request(head[0], int(head[1:]), verb, {"arg": rest} if rest else {})

    def reply_frame(self, request: Request, fields: Mapping[str, str]) -> bytes:
        return f"R{request.seq} {request.verb} {fields.get('n', '')}".encode()

    def refusal_frame(self, seq: int, code: str, reason: str) -> bytes:
        return f"N{seq} {code} {reason}".encode()

    def event_frame(self, seq: int, verb: str, fields: Mapping[str, str]) -> bytes:
        return f"E{seq} {verb}".encode()

    def do_count(self, session: Session, request: Request) -> dict[str, str]:
        self.calls += 1
        return {"n": str(self.calls)}

    def do_hello(self, session: Session, request: Request) -> dict[str, str]:
        return {}


def _session(device: FramedSimDevice) -> Session:
    return Session(cast(Any, None), device.framer())


def _sent(session: Session) -> list[bytes]:
    out = []
    while not session.queue.empty():
        out.append(session.queue.get_nowait())
    return out


def test_a_repeated_request_seq_gets_the_cached_answer_not_a_second_effect() -> None:
    device = Echo()
    session = _session(device)
    device.handle(session, b"H1 COUNT")
    device.handle(session, b"H1 COUNT")
    device.handle(session, b"H2 COUNT")
    assert _sent(session) == [b"R1 COUNT 1", b"R1 COUNT 1", b"R2 COUNT 2"]
    device.handle(session, b"H3 HELLO")  # opens a session: the cache is forgotten
    device.handle(session, b"H1 COUNT")
    assert _sent(session)[-1] == b"R1 COUNT 3"


def test_refusals_unknown_verbs_non_requests_and_injected_codes() -> None:
    device = Echo()
    session = _session(device)
    device.handle(session, b"H1 NOPE")
    device.handle(session, b"E2 COUNT")
    device.handle(session, b"garbage")
    device.naks.extend(["busy", "bad"])
    device.handle(session, b"H3 COUNT")
    device.handle(session, b"H4 COUNT")
    assert _sent(session) == [
        b"N1 verb unknown verb NOPE",
        b"N2 verb not a request",
        b"N0 bad no seq",
        b"N3 busy injected",
        b"N0 bad injected",
    ]
    assert device.calls == 0


def test_events_reach_the_sessions_that_subscribed_to_their_channel() -> None:
    device = Echo()
    everything, some, none = _session(device), _session(device), _session(device)
    everything.subs, some.subs = None, frozenset({"a"})
    device.sessions += [everything, some, none]
    device.publish("SAMPLE", {}, channel="a")
    device.publish("SAMPLE", {}, channel="b")
    device.publish("STATE", {})
    assert _sent(everything) == [b"E1 SAMPLE", b"E2 SAMPLE", b"E3 STATE"]
    assert _sent(some) == [b"E1 SAMPLE", b"E3 STATE"]
    assert _sent(none) == [b"E3 STATE"]
    assert [e.seq for e in device.log.truth.events] == [1, 2, 3]


def test_a_prodigy_refusal_always_fits_a_frame() -> None:
    prodigy = SimulatedProdigy(load_profile("prodigy"), DiscreteEventClock())
    session = _session(prodigy)
    prodigy.handle(session, b"H000001 " + b"A" * 1000)
    (nak,) = _sent(session)
    assert nak.startswith(b"N000001 NAK code=E02")
    assert len(nak) <= MAX_PAYLOAD
