"""The simulated CliniMACS Prodigy on the wire: `SimulatedProdigy` serves a `ProdigyProcess`
and its program runs (device.py) through the framed request/reply family: the request handling
of schemas/protocols/prodigy.md (one session per connection), its events (state, steps, prompts,
alarms, results) and report-by-exception sampling."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

from cellauto.errors import InvalidTransition
from cellauto.protocols import load_protocol
from cellauto.schema import (
    DeviceProfile,
    ParameterSpec,
    ProgramTemplate,
    PropertyValue,
    Quantity,
)
from cellauto.schema.programs import Outcome
from cellauto.sim import Clock, ProgramRunner, RunEvent
from cellauto.sim.alarms import AlarmBook, BookAlarm
from cellauto.sim.device import EventLog
from cellauto.sim.families.framed import FramedSimDevice, Session
from cellauto.sim.lifecycle import NoSuchPrompt, RunLifecycle, SimRun, StateCause
from cellauto.sim.params import Given, ParameterRefused, check_parameters
from cellauto.sim.sampling import Deadband
from cellauto.sim.truth import GroundTruth
from cellauto.state import EXECUTE, State, StateCommand, StateMachine, Transition
from cellauto.transport import StxEtxFramer

from .device import LOW_GLUCOSE, ProdigyRun, alarm_condition, fluidics_active, tubing_set
from .process import UNITS, ProdigyProcess
from .wire import Frame, WireError, build, framer, num, parse, stamp

VENDOR: dict[State, str] = load_protocol("prodigy").by_state()
"""cellauto state -> vendor state name (schemas/protocols/prodigy.toml)."""

LOG_SIZE = 100_000
KEEPALIVE = 1800.0  # s: a SAMPLE at least this often even without change (assumed)
PROGRESS_EVERY = 3600.0  # s of Execute between STEP progress events (assumed)
DEADBAND = {  # change that triggers a SAMPLE before the keepalive (assumed)
    "chamber.temperature": 0.1,
    "chamber.co2": 0.1,
    "chamber.centrifuge_speed": 50.0,
    "chamber.rcf": 5.0,
    "chamber.culture_volume": 1.0,
    "pump.flow_rate": 1.0,
    "pump.line_pressure": 5.0,
}
FAST = frozenset(
    {"chamber.centrifuge_speed", "chamber.rcf", "pump.flow_rate", "pump.line_pressure"}
)
"""Channels sampled at their own (short) period only while the pump or centrifuge runs."""
EVENT_DRIVEN = frozenset(c for c in UNITS if c.startswith("in_process_control."))


class SimulatedProdigy(FramedSimDevice):
    """The device behind the wire, a member of the framed request/reply family. All request
    handling is synchronous (no awaits), so a request is handled and answered as one atomic
    step of virtual time."""

    UNREADABLE: ClassVar[str] = "E01"
    UNKNOWN_VERB: ClassVar[str] = "E02"
    REQUEST_KIND: ClassVar[str] = "H"
    SESSION_OPENER: ClassVar[str] = "HELLO"
    MISSING_FIELD: ClassVar[str] = "E03"

    def __init__(
        self,
        profile: DeviceProfile,
        clock: Clock,
        *,
        seed: int = 0,
        truth: GroundTruth | None = None,
    ) -> None:
        self.truth = truth if truth is not None else GroundTruth()
        super().__init__(clock, EventLog(clock, self.truth, maxlen=LOG_SIZE, wrap=999_999))
        self.profile = profile
        self.seed = seed
        self.process = ProdigyProcess(profile, seed)
        self.machine = StateMachine("prodigy-sim")
        self.alarms = AlarmBook(
            profile, "A{:04d}".format, keep_unacknowledged=False, device="prodigy simulator"
        )
        self.channels = profile.channels()
        self.runs = RunLifecycle(self.machine, self)
        self.run_id = "-"
        self.steps: ProdigyRun | None = None
        """The current (or last) run's steps on the process."""
        self.prompt_count = 0
        self.selected_process = "TCT"
        self.sampling = Deadband(DEADBAND, default=5.0, keepalive=KEEPALIVE)
        """Report by exception (protocol section 4); its counters are the SAMPLEs' `n`."""
        self._last_progress = 0.0
        self.faults_apply: Callable[[str, float], float | None] = lambda channel, value: value

    @property
    def event_seq(self) -> int:
        """The newest event's seq."""
        return self.log.seq

    # --- events and the log ---------------------------------------------------------------

    def emit(self, verb: str, fields: dict[str, str], channel: str | None = None) -> int:
        """Log an event and push it to every session that wants it (a SAMPLE is also a
        published value of its channel)."""
        if verb == "SAMPLE":
            value: float | str = float(fields["v"]) if "v" in fields else fields.get("x", "")
            self.truth.sample(fields["ch"], self.clock.now(), value)
        return self.publish(verb, fields, channel)

    def now(self) -> str:
        return stamp(self.clock.now())

    # --- sampling ---------------------------------------------------------------------------

    def reading(self, channel: str) -> dict[str, str] | None:
        """GET/SAMPLE fields of a channel now (None if it has no value yet)."""
        self.process.advance_to(self.clock.monotonic())
        if channel in UNITS:
            value = self.process.numeric(channel)
            if value is None:
                return None
            quality = "good"
            faulty = self.faults_apply(channel, value)
            if faulty is None:
                return {"ch": channel, "v": num(value), "u": UNITS[channel], "q": "bad"}
            return {"ch": channel, "v": num(faulty), "u": UNITS[channel], "q": quality}
        text = self.process.text(channel)
        if text is None:
            return None
        x = ("true" if text else "false") if isinstance(text, bool) else text
        return {"ch": channel, "x": x, "q": "good"}

    def sample_all(self, *, force: bool = False) -> None:
        """Emit SAMPLE events for channels that changed beyond their deadband or are due."""
        now = self.clock.monotonic()
        for channel in self.channels:
            if channel in EVENT_DRIVEN and not force:
                continue
            if channel in FAST and not force and not fluidics_active(self.process):
                last = self.sampling.last(channel)
                if last is not None and last[1] == 0.0 and now - last[0] < KEEPALIVE:
                    continue
            fields = self.reading(channel)
            if fields is None:
                continue
            value: float | str | bool = float(fields["v"]) if "v" in fields else fields["x"]
            if not force and not self.sampling.wants(channel, value, now):
                continue
            n = self.sampling.sent(channel, value, now)
            self.emit("SAMPLE", fields | {"t": self.now(), "n": str(n)}, channel)

    def tick(self) -> float:
        """One sampling round; returns virtual seconds until the next."""
        now = self.clock.monotonic()
        self.process.advance_to(now)
        if self.steps is not None:
            self.steps.feed_due(now)
        self.sample_all()
        runner = self.runner
        due = now - self._last_progress >= PROGRESS_EVERY
        if runner is not None and runner.state == EXECUTE and due:
            self._last_progress = now
            self.emit_step(runner)
        return 5.0 if fluidics_active(self.process) else 60.0

    async def sample_loop(self) -> None:
        while True:
            await self.clock.sleep(self.tick())

    # --- program runs -----------------------------------------------------------------------

    def emit_step(self, runner: ProgramRunner) -> None:
        status = runner.status
        if status.step_index is None:
            return
        step = runner.program.steps[status.step_index - 1]
        self.emit(
            "STEP",
            {
                "run": self.run_id,
                "n": str(status.step_index),
                "name": step.name,
                "op": step.unit_operation,
                "progress": num(round(status.progress, 6)),
                "remaining": num(round(status.remaining, 3)),
                "t": self.now(),
            },
        )

    @property
    def runner(self) -> ProgramRunner | None:
        """The runner of the current (or last) run."""
        return self.runs.run.runner if self.runs.run is not None else None

    # --- the run life cycle's events on the wire (RunPublisher) ------------------------------

    def run_state(self, transition: Transition, cause: StateCause) -> None:
        word = {"command": "cmd"}.get(cause.kind, cause.kind)
        text = f"{word}:{cause.detail}" if cause.detail else word
        state, prev = VENDOR[transition.to_state], VENDOR[transition.from_state]
        self.emit("STATE", {"state": state, "prev": prev, "cause": text, "t": self.now()})

    def run_result(self, run: SimRun, outcome: Outcome) -> None:
        runner = run.runner
        if runner.started is None:
            return
        fields = {
            "run": self.run_id,
            "outcome": outcome,
            "started": stamp(runner.started),
            "stopped": self.now(),
            "pause": num(round(runner.paused, 3)),
        }
        self.emit("RESULT", fields | self.results() | {"t": self.now()})

    def results(self) -> dict[str, str]:
        """The run's results as ``r.<name>`` fields with their ``r.<name>.u`` units."""
        fields: dict[str, str] = {}
        for name, (value, unit) in sorted(self.process.results.items()):
            fields[f"r.{name}"] = num(float(f"{value:.6g}"))
            fields[f"r.{name}.u"] = unit
        return fields

    def run_step(self, run: SimRun, event: RunEvent) -> None:
        self._last_progress = self.clock.monotonic()
        self.emit_step(run.runner)

    def new_prompt_id(self, run: SimRun) -> str:
        self.prompt_count += 1
        return f"P{self.prompt_count:04d}"

    def run_prompt(self, run: SimRun, prompt_id: str, text: str) -> None:
        self.emit("PROMPT", {"id": prompt_id, "run": run.run_id, "text": text, "t": self.now()})

    def run_prompt_answered(self, run: SimRun, prompt_id: str, answer: str, user: str) -> None:
        self.emit(
            "PROMPT_DONE", {"id": prompt_id, "user": user or "-", "a": answer, "t": self.now()}
        )

    def start_run(self, template: ProgramTemplate, run_id: str, params: dict[str, float]) -> None:
        """Start `template` on a fresh process."""
        self.process = ProdigyProcess(self.profile, self.seed + self.prompt_count + 1)
        self.sampling.forget()
        self.run_id = run_id
        steps = self.steps = ProdigyRun(
            self.process,
            template,
            params,
            self.clock,
            changed=lambda force: self.sample_all(force=force),
            alarm=self.raise_alarm,
        )
        on_start, on_end = steps.hooks()
        parameters: dict[str, PropertyValue] = dict(params)
        runner = ProgramRunner(
            template,
            self.clock,
            device="prodigy-sim",
            machine=self.machine,
            parameters=parameters,
            on_step_start=on_start,
            on_step_end=on_end,
        )
        self.runs.start(runner, run_id, on_end=steps.ended)

    # --- alarms -----------------------------------------------------------------------------

    def raise_alarm(self, code: str, message: str = "") -> str:
        """Raise a profile alarm (no-op if one with this code is active); returns its id."""
        active = self.alarms.active(code)
        if active is not None:
            return active.alarm_id
        alarm = self.alarms.raise_(code, message)
        assert alarm is not None
        self.emit_alarm(alarm, "raised")
        alarm_condition(self.process.state, code, True)
        self.runs.react(self.alarms, alarm)
        self.sample_all()
        return alarm.alarm_id

    def clear_alarm(self, code: str) -> None:
        """The condition behind an alarm is gone."""
        for alarm in self.alarms.clear(code):
            self.emit_alarm(alarm, "cleared")
        alarm_condition(self.process.state, code, False)
        self.sample_all()

    def emit_alarm(self, alarm: BookAlarm, st: str, user: str | None = None) -> None:
        fields = {
            "id": alarm.alarm_id,
            "code": alarm.code,
            "sev": alarm.severity,
            "st": st,
            "msg": alarm.message,
            "t": self.now(),
        }
        if user is not None:
            fields["user"] = user
        self.emit("ALARM", fields)

    # --- the codec (wire.py, written from the protocol document) ----------------------------

    def framer(self) -> StxEtxFramer:
        return framer()

    def read(self, payload: bytes) -> Frame:
        return parse(payload)

    def reply_frame(self, request: Frame, fields: Mapping[str, str]) -> bytes:
        return build("R", request.seq, request.verb, dict(fields))

    def refusal_frame(self, seq: int, code: str, reason: str) -> bytes:
        return build("N", seq, "NAK", {"code": code, "reason": reason})

    def event_frame(self, seq: int, verb: str, fields: Mapping[str, str]) -> bytes:
        return build("E", seq, verb, dict(fields))

    # --- requests ----------------------------------------------------------------------------

    def do_hello(self, session: Session, frame: Frame) -> dict[str, str]:
        return {
            "manufacturer": "Miltenyi Biotec",
            "model": "CliniMACS Prodigy (simulated)",
            "serial": f"SIM-{self.seed:04d}",
            "sw": "1.0",
            "hw": "A",
            "last": str(self.event_seq),
        }

    def do_state(self, session: Session, frame: Frame) -> dict[str, str]:
        return {"state": VENDOR[self.machine.state], "run": self.run_id}

    def do_ping(self, session: Session, frame: Frame) -> dict[str, str]:
        return {"t": self.now(), "last": str(self.event_seq)}

    def do_get(self, session: Session, frame: Frame) -> dict[str, str]:
        channel = self.require(frame, "ch")
        if channel not in self.channels:
            raise WireError("E06", f"unknown channel {channel}")
        fields = self.reading(channel)
        if fields is None:
            fields = {"ch": channel, "v": "0", "u": UNITS[channel], "q": "bad"}
        latest = self.sampling.count(channel)
        extra = {} if latest is None else {"n": str(latest)}
        return fields | {"t": self.now(), "seq": str(self.event_seq)} | extra

    def do_sub(self, session: Session, frame: Frame) -> dict[str, str]:
        wanted = self.require(frame, "ch")
        if wanted == "*":
            session.subs = None
            return {"n": str(len(self.channels)), "last": str(self.event_seq)}
        channels = frozenset(c for c in wanted.split(",") if c)
        unknown = sorted(channels - set(self.channels))
        if unknown:
            raise WireError("E06", f"unknown channel {', '.join(unknown)}")
        session.subs = channels
        return {"n": str(len(channels)), "last": str(self.event_seq)}

    def do_log(self, session: Session, frame: Frame) -> dict[str, str]:
        text = self.require(frame, "from")
        if not text.isdigit():
            raise WireError("E03", "LOG: from must be a sequence number")
        start = int(text)
        entries, lost = self.log.since(start)
        for entry in entries:
            session.push(build("L", entry.seq, entry.kind, dict(entry.data)))
        reply = {"n": str(len(entries)), "last": str(self.event_seq)}
        if lost is not None:
            reply["lost"] = str(lost[1] - lost[0] + 1)
        return reply

    def do_start(self, session: Session, frame: Frame) -> dict[str, str]:
        name = self.require(frame, "prog")
        run_id = self.require(frame, "run")
        try:
            template = self.profile.program(name)
        except KeyError:
            raise WireError("E06", f"unknown program {name}") from None
        if self.runs.running:
            raise WireError("E04", f"a program is running (state {VENDOR[self.machine.state]})")
        try:
            self.machine.check(StateCommand.START)
        except InvalidTransition:
            raise WireError(
                "E04", f"START not allowed in state {VENDOR[self.machine.state]}"
            ) from None
        values = self.parameters(frame, template.parameters, f"START {name}")
        params = {k: v.value for k, v in values.items() if isinstance(v, Quantity)}
        self.start_run(template, run_id, params)
        total = sum(s.duration_seconds or 0.0 for s in template.steps)
        return {"run": run_id, "est": num(total)}

    def parameters(
        self, frame: Frame, specs: Sequence[ParameterSpec], what: str, *, defaults: bool = True
    ) -> dict[str, PropertyValue]:
        """The `p.<name>` fields (with their `.u` units) checked against `specs` (protocol
        section 3: the declared unit only; every parameter left out gets its default)."""
        given: dict[str, Given] = {}
        for key, text in frame.fields.items():
            if not key.startswith("p.") or key.endswith(".u"):
                continue
            given[key[2:]] = Given(text, frame.fields.get(f"{key}.u"))
        for key in frame.fields:
            if key.startswith("p.") and key.endswith(".u") and key[2:-2] not in given:
                raise WireError("E03", f"{what}: unit {key} without its parameter", frame.seq)
        try:
            return check_parameters(
                specs,
                given,
                what=what,
                convert_units=False,
                text_numbers=True,
                defaults=defaults,
            )
        except ParameterRefused as exc:
            raise WireError("E03", exc.reason, frame.seq) from None

    def do_cmd(self, session: Session, frame: Frame) -> dict[str, str]:
        name = self.require(frame, "c")
        try:
            command = StateCommand(name)
        except ValueError:
            raise WireError("E03", f"unknown state command {name}") from None
        if command is StateCommand.START:
            raise WireError("E03", "start is the START request")
        try:
            self.runs.command(command)
        except InvalidTransition:
            raise WireError(
                "E04", f"{name} not allowed in state {VENDOR[self.machine.state]}"
            ) from None
        return {"state": VENDOR[self.machine.state]}

    def do_ack(self, session: Session, frame: Frame) -> dict[str, str]:
        alarm_id = self.require(frame, "alarm")
        user = self.require(frame, "user")
        alarm = self.alarms.get(alarm_id)
        if alarm is None:
            raise WireError("E06", f"no active alarm {alarm_id}")
        if self.alarms.acknowledge(alarm):
            self.emit_alarm(alarm, "acked", user)
        return {"alarm": alarm_id}

    def do_answer(self, session: Session, frame: Frame) -> dict[str, str]:
        prompt = self.require(frame, "prompt")
        user = self.require(frame, "user")
        self.answer(prompt, frame.fields.get("a", "done"), user)
        return {"prompt": prompt}

    def answer(self, prompt: str, answer: str, user: str) -> None:
        """Answer the open prompt (E06 if `prompt` is not the open one)."""
        try:
            self.runs.answer(prompt, answer, user)
        except NoSuchPrompt:
            raise WireError("E06", f"no pending prompt {prompt}") from None

    def do_x(self, session: Session, frame: Frame) -> dict[str, str]:
        name = self.require(frame, "c")
        spec = next((c for c in self.profile.commands if c.name == name), None)
        if spec is None:
            raise WireError("E06", f"unknown command {name}")
        checked = self.parameters(frame, spec.parameters, f"X {name}", defaults=False)
        numbers = {k: v.value for k, v in checked.items() if isinstance(v, Quantity)}
        texts = {k: v for k, v in checked.items() if isinstance(v, str)}
        p = self.process
        match name:
            case "select_process":
                if self.runs.running:
                    raise WireError("E04", "select_process: a program is running")
                process = texts.get("process", "")
                if process not in ("TCT", "CD34"):
                    raise WireError("E03", f"process {process!r} is not TCT or CD34")
                self.selected_process = process
                return {"c": name, "process": process}
            case "run_integrity_test":
                if self.runs.running:
                    raise WireError("E04", "run_integrity_test: a program is running")
                if p.state.tubing_set == "none":
                    p.install(tubing_set(self.selected_process))
                    self.sample_all()
                failed = self.alarms.active("tubing_set_integrity_failure") is not None
                return {"c": name, "result": "fail" if failed else "pass", "drop": "0.4"}
            case "confirm_user_step":
                prompt = texts.get("prompt_id", "")
                self.answer(prompt, texts.get("answer", "done"), texts.get("user", "-"))
                return {"c": name, "prompt": prompt}
            case "take_sample":
                if p.reactor.culture.state.volume <= 0:
                    raise WireError("E04", "take_sample: the chamber holds no culture")
                values = p.take_sample(numbers.get("volume", 2.0))
                self.sample_all(force=True)
                return {"c": name} | {k: num(float(f"{v:.6g}")) for k, v in values.items()}
            case "enter_ipc_result":
                p.enter_ipc(numbers)
                self.sample_all(force=True)
                if numbers.get("glucose", 99.0) < LOW_GLUCOSE:
                    self.raise_alarm("glucose_low")
                return {"c": name, "n": str(len(numbers))}
            case "export_run_report":
                return {"c": name, "run": self.run_id} | self.results()
        raise WireError("E02", f"command {name} is not implemented by the simulator")

    # --- housekeeping -------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop the current run, if any, and let the clock go."""
        await self.runs.close()
        await super().close()
