"""The OPC UA event-log family: a device on an OPC UA server whose events are numbered (`Seq`
from 1, no gaps), kept in an `EventLog`, emitted as custom event types from the Server object,
mirrored in status variables (the newest Seq among them), and read back as JSON Lines, with a
first ``{"gap": {"from", "to"}}`` line for what the log no longer holds.

A device subclasses `OpcUaEventLogDevice`, passes its address space, its event types by kind,
its profile, state machine and vendor state and severity names, logs events with
`event(kind, message, **fields)` (synchronous: they are published in order by one task), may
extend `status_for(entry)` to mirror an event in status variables and override `after_events()`
to publish what the events changed. At ``speed=max`` virtual time starts with the first client
session.

The base speaks the family's run and alarm vocabulary: it is the `RunPublisher` of `runs` (its
`RunLifecycle`): ``state`` events (State, PreviousState, Cause), ``prompt`` events (PromptId,
RunId, Text, Status open/answered, User, Answer) and ``result`` events (RunId, Outcome, Started,
Stopped, PauseTime, Properties from `result_properties`); it raises, clears and acknowledges the
alarms of `alarms` (its `AlarmBook`) as ``alarm`` events (AlarmId, Code, Status, SourceUnit,
User) with the profile's declared reaction; it mirrors State and ActiveAlarms; and
`family_methods()` answers the state commands, AcknowledgePrompt, AcknowledgeAlarm and
ReadEventLog. A device adds its own event kinds (override `run_step` for step events).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

from cellauto.errors import InvalidTransition, SimulationError
from cellauto.schema import DeviceProfile
from cellauto.schema.programs import Outcome
from cellauto.sim.alarms import AlarmBook, BookAlarm
from cellauto.sim.clock import Clock
from cellauto.sim.device import ClockPin, EventLog
from cellauto.sim.lifecycle import NoSuchPrompt, RunLifecycle, SimRun, StateCause
from cellauto.sim.runner import RunEvent
from cellauto.sim.servers.opcua import EventType, MethodFailed, Obj, OpcUaServer
from cellauto.sim.truth import GroundTruth
from cellauto.state import IDLE, State, StateCommand, StateMachine, Transition

__all__ = ["OpcUaEventLogDevice"]

EVENT_ONLY = ("Time", "Message", "Severity")
"""Entry keys that are BaseEventType fields (namespace 0), not the type's own."""

DEFAULT_SEVERITY = 500
"""OPC UA Severity of an alarm event whose severity the device names no number for."""

STATE_METHODS = {
    "Hold": StateCommand.HOLD,
    "Unhold": StateCommand.UNHOLD,
    "Suspend": StateCommand.SUSPEND,
    "Unsuspend": StateCommand.UNSUSPEND,
    "Stop": StateCommand.STOP,
    "Abort": StateCommand.ABORT,
    "Clear": StateCommand.CLEAR,
    "Reset": StateCommand.RESET,
}
"""The state-command methods (outputs NewState, Seq)."""


class OpcUaEventLogDevice:
    """The family base; see the module doc."""

    SOURCE: ClassVar[str] = "device"
    """SourceName of every event."""
    SEQ_STATUS: ClassVar[str] = "EventSeq"
    """The status variable that follows the newest published Seq."""
    PROMPT_SEVERITY: ClassVar[int] = 300
    """Severity of prompt events."""

    def __init__(
        self,
        clock: Clock,
        objects: Sequence[Obj],
        *,
        namespace: str,
        event_types: Mapping[str, EventType],
        status_path: Callable[[int, str], str],
        name: str,
        port: int = 0,
        anonymous: Literal["read", "operate"] = "read",
        truth: GroundTruth | None = None,
        maxlen: int = 100_000,
        profile: DeviceProfile | None = None,
        machine: StateMachine | None = None,
        vendor_states: Mapping[State, str] | None = None,
        severities: Mapping[str, int] | None = None,
    ) -> None:
        self.clock = clock
        self.machine = machine or StateMachine(self.SOURCE, initial=IDLE)
        self.vendor_states = dict(vendor_states or {})
        """cellauto state -> the device's state name (default: cellauto's)."""
        self.severities = dict(severities or {})
        """alarm severity -> the events' OPC UA Severity (default: `DEFAULT_SEVERITY`)."""
        self.runs = RunLifecycle(self.machine, self)
        self._alarms = (
            None
            if profile is None
            else AlarmBook(profile, lambda _n: f"AL-{self.seq + 1:06d}", device=self.SOURCE.lower())
        )
        self._alarm_list = "[]"
        self.event_types = dict(event_types)
        self.server = OpcUaServer(
            objects,
            namespace=namespace,
            event_types=list(self.event_types.values()),
            name=name,
            port=port,
            anonymous=anonymous,
        )
        self.truth = truth if truth is not None else GroundTruth()
        self.log = EventLog(clock, self.truth, maxlen=maxlen)
        self.status: dict[str, Any] = {}
        self.ns = 2
        """The device namespace's index (known once started)."""
        self._status_path = status_path
        self._outbox: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._start_pin = ClockPin(clock)
        self._tasks: list[asyncio.Task[Any]] = []

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the server and the event publisher (at speed=max, hold the clock until the
        first client session)."""
        await self.server.start()
        self.ns = self.server.namespace_index
        self.status["State"] = self.vendor_state(self.machine.state)
        self.wait_for_client()
        self.spawn(self._publisher(), "publisher")

    def wait_for_client(self) -> None:
        """At speed=max hold virtual time until a client is connected with a session: at
        start, so a seeded run does not depend on how long the client took to connect, and
        after a dropped link, so an outage lasts its declared time rather than however many
        virtual hours pass while the client's reconnect back-off waits in real time."""
        if self.clock.speed == "max" and not self._start_pin.held:
            self._start_pin.hold()
            self.spawn(self._release_on_client(), "wait for client")

    async def _release_on_client(self) -> None:
        # asyncua offers no session or connection hook
        while not (self.server.sessions and self.server.connections):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        self._start_pin.release()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run a background task the device cancels when it stops."""
        self._tasks.append(asyncio.create_task(coro, name=f"{self.SOURCE} {name}"))

    async def stop(self) -> None:
        """Cancel every task and any run (nothing more is published), then stop the server."""
        for task in self._tasks:
            task.cancel()
        await self.runs.close()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._start_pin.release()
        await self.server.stop()

    @property
    def alarms(self) -> AlarmBook:
        """The device's alarms (from the `profile` it was given)."""
        if self._alarms is None:
            raise SimulationError(f"{self.SOURCE}: no profile given, so no alarms")
        return self._alarms

    def vendor_state(self, state: State) -> str:
        """The device's name of `state`."""
        return self.vendor_states.get(state, str(state))

    @property
    def seq(self) -> int:
        """The newest event's Seq."""
        return self.log.seq

    # -- events -------------------------------------------------------------------------------

    def event(self, kind: str, message: str, *, severity: int = 100, **fields: Any) -> int:
        """Log an event now (virtual time) and queue it for publication; returns its Seq."""
        entry = {"Kind": kind, "Seq": self.log.seq + 1, "Time": self.clock.now()}
        entry |= {"Message": message, "Severity": severity, **fields}
        self.log.append(kind, entry)
        self._outbox.append(entry)
        self._wake.set()
        return self.seq

    def status_for(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """Status variables to update with an event, before it is emitted (State with a state
        event, ActiveAlarms with an alarm event)."""
        if entry["Kind"] == "state":
            return {"State": entry["State"]}
        if entry["Kind"] == "alarm":
            return {"ActiveAlarms": self._alarm_list}
        return {}

    async def after_events(self) -> None:
        """Called after each batch of published events (nothing by default)."""

    async def _publisher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            with self.clock.busy():
                while self._outbox:
                    await self._publish(self._outbox.popleft())
                await self.after_events()

    async def _publish(self, entry: dict[str, Any]) -> None:
        await self.set_status(**self.status_for(entry), **{self.SEQ_STATUS: entry["Seq"]})
        fields = {k: v for k, v in entry.items() if k not in EVENT_ONLY}
        await self.server.emit_event(
            self.event_types[entry["Kind"]].name,
            entry["Message"],
            severity=entry["Severity"],
            source=self.SOURCE,
            time=entry["Time"],
            **fields,
        )

    def read_log(self, first: int) -> tuple[str, int]:
        """Events from Seq `first` as JSON Lines (a gap line first if some are gone), and the
        newest Seq."""
        entries, lost = self.log.since(first)
        lines = [] if lost is None else [json.dumps({"gap": {"from": lost[0], "to": lost[1]}})]
        for entry in entries:
            data = dict(entry.data) | {"Time": entry.time.isoformat()}
            lines.append(json.dumps(data, default=_iso))
        return "\n".join(lines), self.seq

    async def set_status(self, **values: Any) -> None:
        """Write status variables whose value changed (stamped with the device clock)."""
        for name, value in values.items():
            if self.status.get(name) != value:
                self.status[name] = value
                await self.server.set(self._status_path(self.ns, name), value, self.clock.now())

    # -- runs (the RunPublisher of `runs`) ---------------------------------------------------

    def run_state(self, transition: Transition, cause: StateCause) -> None:
        """A ``state`` event; Cause is ``command:<name>``, ``alarm:<id>`` or ``done``."""
        why = {"command": f"command:{cause.detail}", "alarm": f"alarm:{cause.detail}"}
        before = self.vendor_state(transition.from_state)
        after = self.vendor_state(transition.to_state)
        self.event(
            "state",
            f"{before} -> {after}",
            State=after,
            PreviousState=before,
            Cause=why.get(cause.kind, "done"),
        )

    def result_properties(self, run: SimRun) -> dict[str, Any]:
        """The run's result properties, name -> ``{"value", "unit"}`` (none by default)."""
        return {}

    def run_result(self, run: SimRun, outcome: Outcome) -> None:
        """A ``result`` event."""
        runner = run.runner
        properties = self.result_properties(run)
        self.event(
            "result",
            f"run {run.run_id} {outcome}",
            RunId=run.run_id,
            Outcome=outcome,
            Started=runner.started or self.clock.now(),
            Stopped=self.clock.now(),
            PauseTime=runner.paused,
            Properties=json.dumps(properties),
        )

    def run_step(self, run: SimRun, event: RunEvent) -> None:
        """A step started (nothing by default: a device with step events overrides this)."""

    def new_prompt_id(self, run: SimRun) -> str:
        """``<run id>-<step number>``."""
        return f"{run.run_id}-{run.runner.status.step_index}"

    def run_prompt(self, run: SimRun, prompt_id: str, text: str) -> None:
        """A ``prompt`` event with Status open."""
        self._prompt_event(run, prompt_id, text, "open", "", "")

    def run_prompt_answered(self, run: SimRun, prompt_id: str, answer: str, user: str) -> None:
        """A ``prompt`` event with Status answered."""
        self._prompt_event(run, prompt_id, run.runner.prompt or "", "answered", user, answer)

    def _prompt_event(
        self, run: SimRun, prompt_id: str, text: str, status: str, user: str, answer: str
    ) -> None:
        self.event(
            "prompt",
            text,
            severity=self.PROMPT_SEVERITY,
            PromptId=prompt_id,
            RunId=run.run_id,
            Text=text,
            Status=status,
            User=user,
            Answer=answer,
        )

    # -- alarms -------------------------------------------------------------------------------

    def raise_book_alarm(self, code: str) -> str:
        """Raise alarm `code` (not active now): its ``alarm`` event, then the profile's reaction
        of a running program; returns its id."""
        alarm = self.alarms.raise_(code)
        assert alarm is not None  # callers raise only codes not active
        self.alarm_event(alarm, "raised", "")
        self.runs.react(self.alarms, alarm)
        return alarm.alarm_id

    def clear_book_alarm(self, code: str) -> None:
        """The condition behind `code` is gone: its active alarms clear."""
        for alarm in self.alarms.clear(code):
            self.alarm_event(alarm, "cleared", "")

    def alarm_event(self, alarm: BookAlarm, status: str, user: str) -> None:
        """An ``alarm`` event (`status` raised, cleared or acknowledged); ActiveAlarms then
        lists every alarm the book holds."""
        spec = alarm.spec
        self.event(
            "alarm",
            f"{spec.title} ({status})",
            severity=self.severities.get(spec.severity, DEFAULT_SEVERITY),
            AlarmId=alarm.alarm_id,
            Code=alarm.code,
            Status=status,
            SourceUnit=spec.functional_unit or "",
            User=user,
        )
        held = [
            {"AlarmId": a.alarm_id, "Code": a.code, "Active": a.active}
            | {"Acknowledged": a.acknowledged}
            for a in self.alarms
        ]
        self._alarm_list = json.dumps(held)

    # -- the family's methods -----------------------------------------------------------------

    def family_methods(self) -> dict[str, Callable[..., Any]]:
        """Handlers of the state-command methods, AcknowledgePrompt, AcknowledgeAlarm and
        ReadEventLog, by method name."""

        def state_method(command: StateCommand) -> Callable[[], Any]:
            async def handler() -> tuple[str, int]:
                seq = self.state_command(command)
                return self.vendor_state(self.machine.state), seq

            return handler

        return {
            **{name: state_method(command) for name, command in STATE_METHODS.items()},
            "AcknowledgePrompt": self._acknowledge_prompt,
            "AcknowledgeAlarm": self._acknowledge_alarm,
            "ReadEventLog": self._read_event_log,
        }

    def state_command(self, command: StateCommand) -> int:
        """Route a state command (`RunLifecycle.command`); BadInvalidState if not allowed;
        returns the newest Seq."""
        try:
            self.runs.command(command)
        except InvalidTransition as exc:
            raise MethodFailed("BadInvalidState", str(exc)) from None
        return self.seq

    async def _acknowledge_prompt(self, prompt_id: str, user: str, answer: str) -> int:
        try:
            self.runs.answer(prompt_id, answer, user)
        except NoSuchPrompt:
            raise MethodFailed("BadNotFound", f"no open prompt {prompt_id!r}") from None
        return self.seq

    async def _acknowledge_alarm(self, alarm_id: str, user: str) -> int:
        alarm = self.alarms.get(alarm_id)
        if alarm is None or not self.alarms.acknowledge(alarm):
            raise MethodFailed("BadNotFound", f"no unacknowledged alarm {alarm_id!r}")
        self.alarm_event(alarm, "acknowledged", user)
        return self.seq

    async def _read_event_log(self, first: int) -> tuple[str, int]:
        return self.read_log(first)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot log {value!r}")
