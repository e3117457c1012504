"""The simulated Maholo behind cellauto's Maholo HTTP API (schemas/protocols/maholo.md and
maholo.openapi.json): a job queue of protocol runs, robot jobs made of commands with failures
at the published rates, operator prompts for interventions, alarms, channels, labware and
plate images. Every handler is synchronous, so a request is one atomic step of virtual time."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cellauto.errors import InvalidTransition
from cellauto.protocols import load_protocol
from cellauto.schema import DeviceProfile, ProgramStep, ProgramTemplate, PropertyValue, Quantity
from cellauto.schema.programs import Outcome
from cellauto.sim import Clock, ProgramRunner, RunEvent, StepContext
from cellauto.sim.device import ClockPin, alarm_reaction
from cellauto.sim.lifecycle import NoSuchPrompt, RunLifecycle, SimRun, StateCause
from cellauto.sim.params import Given, ParameterRefused, check_parameters
from cellauto.sim.servers.http import HttpRequest, HttpSimServer, Problem, Reply
from cellauto.sim.truth import GroundTruth
from cellauto.state import EXECUTE, IDLE, State, StateCommand, StateMachine, Transition

from . import process
from .process import (
    ALARM_OF_CAUSE,
    COMMAND_CYCLE,
    COMMAND_OF_CAUSE,
    COMMANDS_PER_JOB,
    MEAN_JOB_SECONDS,
)

PROTOCOL = load_protocol("maholo")
VENDOR: dict[State, str] = PROTOCOL.by_state()
LOG_SIZE = 200_000
TICK = 1800.0  # s between environment readings (assumed)
KEEPALIVE = 12 * 3600.0  # s: a periodic channel's sample at least this often (assumed)
DEADBAND = {"incubator.temperature": 0.2, "incubator.co2": 0.2, "dry_bath.temperature": 0.3}
API_VERSION = "1.0"
JOB_OPERATIONS = {
    "seeding": "seed",
    "medium_exchange_i": "medium_exchange",
    "medium_exchange_ii": "medium_exchange",
    "passage": "passage",
}
"""The unit operation of each robot job type (as in the profile's programs)."""


def stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Job:
    """One entry of the job queue: a protocol run."""

    job_id: str
    program: str
    run_id: str
    parameters: dict[str, Any]
    submitted: datetime
    supervisory_job_id: str | None = None
    template: ProgramTemplate | None = None
    status: str = "queued"
    started: datetime | None = None
    finished: datetime | None = None

    def json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "program": self.program,
            "run_id": self.run_id,
            "parameters": self.parameters,
            "supervisory_job_id": self.supervisory_job_id,
            "status": self.status,
            "submitted": stamp(self.submitted),
            "started": stamp(self.started) if self.started else None,
            "finished": stamp(self.finished) if self.finished else None,
        }


@dataclass
class RobotJob:
    """One robot job of the robot log (seeding, medium exchange, passage)."""

    robot_job_id: str
    job_id: str
    name: str
    job_type: str
    start: datetime
    command_count: int
    end: datetime | None = None
    status: str = "running"
    commands_done: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        duration = (self.end - self.start).total_seconds() if self.end else None
        return {
            "robot_job_id": self.robot_job_id,
            "job_id": self.job_id,
            "name": self.name,
            "job_type": self.job_type,
            "start": stamp(self.start),
            "end": stamp(self.end) if self.end else None,
            "duration": duration,
            "command_count": self.command_count,
            "commands_done": self.commands_done,
            "status": self.status,
            "errors": self.errors,
        }


@dataclass
class ActiveAlarm:
    alarm_id: str
    code: str
    severity: str
    message: str
    raised: datetime
    acknowledged_by: str | None = None


@dataclass
class Prompt:
    prompt_id: str
    text: str
    kind: str
    job_id: str | None
    raised: datetime
    choices: tuple[str, ...] = ("done",)
    answered: asyncio.Event = field(default_factory=asyncio.Event)


class SimulatedMaholo:
    """The device behind the HTTP server (see the module doc). Robot commands fail at
    `failure_rate` each (the published rate by default), with the published causes."""

    def __init__(
        self,
        profile: DeviceProfile,
        clock: Clock,
        server: HttpSimServer,
        *,
        seed: int = 0,
        failure_rate: float = process.COMMAND_FAILURE_RATE,
        truth: GroundTruth | None = None,
    ) -> None:
        self.profile = profile
        self.clock = clock
        self.server = server
        self.seed = seed
        self.failure_rate = failure_rate
        self.truth = truth if truth is not None else GroundTruth()
        self.rng = random.Random(seed)
        self.machine = StateMachine("maholo-sim", IDLE)  # the robot powers up in STANDBY
        self.channels = profile.channels()
        self.jobs: dict[str, Job] = {}
        self.robot_log: list[RobotJob] = []
        self.alarms: dict[str, ActiveAlarm] = {}
        self.prompts: dict[str, Prompt] = {}
        self.images: dict[str, tuple[bytes, dict[str, Any]]] = {}
        self.runs = RunLifecycle(self.machine, self)
        self.current: Job | None = None
        self.work_task: asyncio.Task[None] | None = None
        self.cause: str | None = None
        """A job request's own cause for the state events it causes (``cancel``, ``abort_job``)."""
        self.results: dict[str, Any] = {}
        self.plates = process.Plates(random.Random(seed), 0)
        """The wells of the running job's plates and their growth."""
        self.prompt_pin = ClockPin(clock)
        self.prompts_changed = asyncio.Event()
        """Set whenever a prompt opens or closes."""
        self._counts = {"job": 0, "robot": 0, "alarm": 0, "prompt": 0, "image": 0}
        self._published: dict[str, tuple[float, Any, int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.values: dict[str, Any] = {
            "robot.job_name": "none",
            "robot.job_type": "none",
            "robot.job_state": "succeeded",
            "robot.command_count": 0,
            "robot.command_index": 0,
            "robot.job_elapsed": 0.0,
            "robot.error_cause": "none",
            "pipettes.tip_loaded": False,
            "pipettes.pipette_in_hand": 0.0,
            "pipettes.motions": 0,
            "incubator.temperature": 37.0,
            "incubator.temperature_setpoint": 37.0,
            "incubator.co2": 5.0,
            "incubator.co2_setpoint": 5.0,
            "incubator.door_open": False,
            "dry_bath.temperature": 37.0,
            "dry_bath.temperature_setpoint": 37.0,
            "microscope.status": "idle",
            "microscope.images_captured": 0,
            "microscope.pigmented_area": 0.0,
            "microscope.confluency": 0.0,
            "booth.fan_filter_units_running": True,
            "booth.wide_camera_recording": True,
            "booth.plates_in_booth": 0,
            "booth.handover": "none",
        }
        self._routes()

    def _next(self, what: str, prefix: str) -> str:
        self._counts[what] += 1
        return f"{prefix}{self._counts[what]:04d}"

    # --- events and samples ---------------------------------------------------------------------

    def emit(self, kind: str, data: Mapping[str, Any]) -> int:
        return self.server.emit(kind, dict(data))

    def now(self) -> str:
        return stamp(self.clock.now())

    def set(self, **values: Any) -> None:
        """Change channel values (``robot__job_name=...``) and publish what changed."""
        for key, value in values.items():
            self.values[key.replace("__", ".")] = value
        self.publish()

    def publish(self, *, force: bool = False) -> None:
        """A sample event for each channel whose value changed (beyond its deadband) or whose
        keepalive is due."""
        now = self.clock.monotonic()
        for channel, value in self.values.items():
            last = self._published.get(channel)
            periodic = self.channels[channel].sample_period is not None
            if not force and last is not None and (now - last[0] < KEEPALIVE or not periodic):
                if isinstance(value, float) and isinstance(last[1], float):
                    if abs(value - last[1]) <= DEADBAND.get(channel, 0.0):
                        continue
                elif value == last[1]:
                    continue
            n = last[2] + 1 if last is not None else 0
            self._published[channel] = (now, value, n)
            self.truth.sample(channel, self.clock.now(), value)
            self.emit("sample", self.reading(channel) | {"n": n})

    def reading(self, channel: str) -> dict[str, Any]:
        spec = self.channels[channel]
        value = self.values[channel]
        if spec.dtype == "float":
            value = float(value)
        out: dict[str, Any] = {"channel": channel, "value": value, "time": self.now()}
        if spec.dtype in ("float", "int") and spec.unit is not None:
            out["unit"] = spec.unit
        out["quality"] = "good"
        return out

    async def environment_loop(self) -> None:
        rng = random.Random(self.seed + 7)
        while True:
            v = self.values
            v["incubator.temperature"] = process.environment(
                rng, v["incubator.temperature_setpoint"], 0.05
            )
            v["incubator.co2"] = process.environment(rng, v["incubator.co2_setpoint"], 0.05)
            v["dry_bath.temperature"] = process.environment(
                rng, v["dry_bath.temperature_setpoint"], 0.1
            )
            self.publish()
            await self.clock.sleep(TICK)

    # --- state and runs -------------------------------------------------------------------------

    @property
    def runner(self) -> ProgramRunner | None:
        """The runner of the current (or last) job."""
        return self.runs.run.runner if self.runs.run is not None else None

    # The run life cycle's events on the wire (RunPublisher).

    def run_state(self, transition: Transition, cause: StateCause) -> None:
        word = {"command": "cmd"}.get(cause.kind, cause.kind)
        text = self.cause or (f"{word}:{cause.detail}" if cause.detail else word)
        job = self.current.job_id if self.current else None
        state, prev = VENDOR[transition.to_state], VENDOR[transition.from_state]
        self.emit("state", {"state": state, "prev": prev, "cause": text, "job_id": job})
        if transition.to_state == IDLE:
            self._start_next()

    def run_result(self, run: SimRun, outcome: Outcome) -> None:
        job = self.current
        assert job is not None
        job.status = {"complete": "succeeded"}.get(outcome, outcome)
        job.finished = self.clock.now()
        self.values["booth.handover"] = "none"
        if self.work_task is not None:
            self.work_task.cancel()
        for prompt in list(self.prompts.values()):
            self._close_prompt(prompt, "cancelled", "-")
        runner = run.runner
        self.emit(
            "result",
            {
                "job_id": job.job_id,
                "run_id": job.run_id,
                "outcome": outcome,
                "started": stamp(runner.started or self.clock.now()),
                "stopped": self.now(),
                "pause": round(runner.paused, 3),
                "properties": dict(self.results),
                "images": [
                    {"image_id": i, "sha256": meta["sha256"], "plate": meta["plate"]}
                    for i, (_png, meta) in self.images.items()
                    if meta.get("job_id") == job.job_id
                ],
            },
        )
        self.emit("job", {"job_id": job.job_id, "status": job.status})

    def run_step(self, run: SimRun, event: RunEvent) -> None:
        status, step = event.status, event.step
        assert self.current is not None
        assert step is not None
        self.emit(
            "step",
            {
                "job_id": self.current.job_id,
                "n": status.step_index,
                "name": step.name,
                "op": step.unit_operation,
                "progress": round(status.progress, 6),
                "remaining": round(status.remaining, 3),
            },
        )

    def new_prompt_id(self, run: SimRun) -> str:
        return self._next("prompt", "P")

    def run_prompt(self, run: SimRun, prompt_id: str, text: str) -> None:
        self.open_prompt(prompt_id, text, "step", self.current.job_id if self.current else None)

    def run_prompt_answered(self, run: SimRun, prompt_id: str, answer: str, user: str) -> None:
        self._close_prompt(self.prompts[prompt_id], answer, user)

    def _start_next(self) -> None:
        if self.runs.running or self.machine.state != IDLE:
            return
        queued = [j for j in self.jobs.values() if j.status == "queued"]
        if queued:
            self._start(queued[0])

    def _start(self, job: Job) -> None:
        template = job.template or self.profile.program(job.program)
        self.current = job
        job.status = "running"
        job.started = self.clock.now()
        self.results = {}
        plates = int(_number(job.parameters.get("plates"), 8))
        self.plates = process.Plates(random.Random(f"{self.seed}:{job.run_id}:wells"), plates)
        self.emit("job", {"job_id": job.job_id, "status": job.status})
        runner = ProgramRunner(
            template,
            self.clock,
            device="maholo-sim",
            machine=self.machine,
            parameters=_numbers(job.parameters),
            on_step_start={"*": self._step_started},
            on_step_end={"*": self._step_ended},
        )
        self.runs.start(runner, job.run_id)

    # --- robot work -----------------------------------------------------------------------------

    def _step_started(self, ctx: StepContext) -> None:
        step = ctx.step
        if step.unit_operation == "load_labware":
            self.set(booth__handover="place_labware")
        elif step.unit_operation == "seed":
            self.plates.seed(self.clock.monotonic())
        elif step.unit_operation == "passage":
            self.plates.passage(self.clock.monotonic())
            self.plates.differentiate(self.clock.monotonic(), self._well_scores(ctx))
        self.observe()
        job_type = step.parameters.get("job")
        if isinstance(job_type, str) and job_type in COMMANDS_PER_JOB:
            seconds = step.duration_seconds or 0.0
            days = max(1, round(seconds / 86400))
            self.work_task = asyncio.ensure_future(self._robot_work(ctx, job_type, days, seconds))
        elif step.unit_operation == "capture_image":
            self._score(ctx)

    def _step_ended(self, ctx: StepContext) -> None:
        if ctx.step.unit_operation == "load_labware":
            plates = int(_number(self.current.parameters.get("plates") if self.current else 8, 8))
            self.set(booth__handover="none", booth__plates_in_booth=plates)
        if self.work_task is not None and not self.work_task.done():
            self.work_task.cancel()

    async def _robot_work(self, ctx: StepContext, job_type: str, days: int, seconds: float) -> None:
        slot = seconds / days
        start = self.clock.monotonic()
        for day in range(days):
            await self.clock.sleep(start + day * slot - self.clock.monotonic())
            await self._robot_job(ctx, job_type, min(MEAN_JOB_SECONDS, 0.8 * slot))

    async def _robot_job(self, ctx: StepContext, job_type: str, seconds: float) -> None:
        job = self.current
        assert job is not None
        commands = COMMANDS_PER_JOB[job_type]
        entry = RobotJob(
            self._next("robot", "R"),
            job.job_id,
            f"{job_type} ({ctx.step.name})",
            job_type,
            self.clock.now(),
            commands,
        )
        self.robot_log.append(entry)
        self.emit("robot_job", entry.json())
        self.observe()
        self.set(
            robot__job_name=entry.name,
            robot__job_type=job_type,
            robot__job_state="running",
            robot__command_count=commands,
            robot__command_index=0,
            robot__error_cause="none",
        )
        failures = process.draw_failures(self.rng, commands, self.failure_rate)
        per_command = seconds / commands
        done = 0
        try:
            for failure in failures:
                await self._work(per_command * (failure.index - done))
                done = failure.index
                entry.commands_done = done
                await self._fail(entry, failure)
                if failure.aborted:
                    return
            await self._work(per_command * (commands - done))
            entry.commands_done = commands
            entry.status = "succeeded" if not entry.errors else "resumed"
        finally:
            entry.end = self.clock.now()
            self.values["pipettes.motions"] += entry.commands_done // 3
            self.emit("robot_job", entry.json())
            self.set(
                robot__job_state="succeeded" if entry.status != "aborted" else "aborted",
                robot__command_index=entry.commands_done,
                robot__job_elapsed=round((entry.end - entry.start).total_seconds() / 60, 3),
            )

    async def _work(self, seconds: float) -> None:
        """Robot time that counts only while the run executes (hold and suspend pause it)."""
        left = seconds
        while left > 1e-3:
            runner = self.runner
            while runner is not None and runner.state != EXECUTE:
                await self.clock.sleep(60.0)
            chunk = min(left, 3600.0)
            await self.clock.sleep(chunk)
            left -= chunk

    async def _fail(self, entry: RobotJob, failure: process.CommandFailure) -> None:
        cycle = COMMAND_CYCLE[entry.job_type]
        command = COMMAND_OF_CAUSE.get(failure.cause) or cycle[(failure.index - 1) % len(cycle)]
        outcome = "aborted" if failure.aborted else "intervention"
        error = {
            "index": failure.index,
            "command": command,
            "cause": failure.cause,
            "outcome": outcome,
            "time": self.now(),
        }
        entry.errors.append(error)
        self.emit("command_error", {"robot_job_id": entry.robot_job_id, **error})
        self.set(robot__error_cause=failure.cause, robot__command_index=failure.index)
        code = ALARM_OF_CAUSE[failure.cause]
        if failure.aborted:
            entry.status = "aborted"
            self.raise_alarm("command_aborted", f"{command} aborted: {failure.cause}")
            return
        entry.status = "needs_human_intervention"
        self.set(robot__job_state="needs_human_intervention", booth__handover="intervene")
        self.emit("robot_job", entry.json())
        alarm_id = self.raise_alarm(code, f"{command} failed")
        spec = next(a for a in self.profile.alarms if a.code == code)
        prompt = self.open_prompt(
            self._next("prompt", "P"),
            f"Robot job {entry.robot_job_id}: {command} failed ({failure.cause}). {spec.action}",
            "intervention",
            entry.job_id,
        )
        await prompt.answered.wait()
        self.clear_alarm_id(alarm_id)
        entry.status = "resumed"
        self.set(robot__job_state="resumed", booth__handover="none")
        self.emit("robot_job", entry.json())

    def _well_scores(self, ctx: StepContext) -> list[float]:
        """The day-34 pigmented area of every well of the running job (its parameters and
        run id decide them)."""
        job = self.current
        assert job is not None
        values = {
            k: _number(v, process.PARAMETERS[k].default)
            for k, v in ctx.parameters.items()
            if k in process.PARAMETERS
        }
        plates = int(_number(ctx.parameters.get("plates"), 8))
        return process.well_scores(random.Random(f"{self.seed}:{job.run_id}"), values, plates)

    def _score(self, ctx: StepContext) -> None:
        job = self.current
        assert job is not None
        plates = int(_number(ctx.parameters.get("plates"), 8))
        scores = self._well_scores(ctx)
        mean = sum(scores) / len(scores)
        self.results = {
            "pigmentation_score": {"value": round(mean, 3), "unit": "%"},
            "best_well_score": {"value": max(scores), "unit": "%"},
            "wells_scored": {"value": len(scores), "unit": "1"},
        }
        for plate in range(plates):
            wells = scores[plate * 6 : plate * 6 + 6]
            self._capture(job, f"P{plate + 1}", sum(wells) / len(wells), wells)
        self.set(microscope__pigmented_area=round(mean, 3), microscope__status="idle")

    def observe(self) -> None:
        """Publish the mean confluency (and, once differentiation started, the mean pigmented
        area) of the wells now."""
        now = self.clock.monotonic()
        wells = self.plates.confluency(now)
        mean = sum(wells) / len(wells) if wells else 0.0
        self.set(microscope__confluency=round(mean, 2))
        if self.plates.scores:
            pigmented = self.plates.pigmentation(now)
            self.set(microscope__pigmented_area=round(sum(pigmented) / len(pigmented), 3))

    def _capture_growth(self, job: Job, plate: str) -> str:
        """An image of `plate` showing its wells' confluency now (a plate it does not hold:
        an empty plate)."""
        wells = self.plates.confluency(self.clock.monotonic())
        try:
            index = int(plate.lstrip("P")) - 1
        except ValueError:
            index = -1
        mine = wells[index * 6 : index * 6 + 6] if index >= 0 else []
        confluency = sum(mine) / len(mine) if mine else 0.0
        return self._capture(job, plate, confluency, [], confluency=mine)

    def _capture(
        self,
        job: Job,
        plate: str,
        score: float,
        wells: list[float],
        *,
        confluency: list[float] | None = None,
    ) -> str:
        """Store a plate image whose covered fraction is `score` %, with its metadata (the
        wells' pigmentation scores and, for a growth image, their confluency)."""
        image_id = self._next("image", "IMG")
        meta: dict[str, Any] = {
            "image_id": image_id,
            "job_id": job.job_id,
            "plate": plate,
            "time": self.now(),
            "pigmented_area": round(
                score if confluency is None else self.values["microscope.pigmented_area"], 3
            ),
            "wells": wells,
        }
        if confluency is not None:
            meta["confluency"] = round(score, 3)
            meta["well_confluency"] = confluency
        png = _render(score / 100.0, self.seed * 1000 + self._counts["image"], meta)
        meta["sha256"] = hashlib.sha256(png).hexdigest()
        meta["size"] = len(png)
        self.images[image_id] = (png, meta)
        self.values["microscope.images_captured"] += 1
        return image_id

    # --- alarms and prompts ---------------------------------------------------------------------

    def raise_alarm(self, code: str, message: str = "") -> str:
        for alarm in self.alarms.values():
            if alarm.code == code:
                return alarm.alarm_id
        spec = next((a for a in self.profile.alarms if a.code == code), None)
        if spec is None:
            raise KeyError(f"maholo simulator: no alarm {code!r}")
        alarm = ActiveAlarm(
            self._next("alarm", "A"),
            code,
            str(spec.severity),
            message or spec.title,
            self.clock.now(),
        )
        self.alarms[alarm.alarm_id] = alarm
        self.emit_alarm(alarm, "raised")
        self.runs.react_to(alarm_reaction(self.profile, spec.severity), alarm.alarm_id)
        if code == "microscope_failure":
            self.set(microscope__status="error")
        elif code == "fan_filter_unit_failure":
            self.set(booth__fan_filter_units_running=False)
        return alarm.alarm_id

    def clear_alarm(self, code: str) -> None:
        for alarm in list(self.alarms.values()):
            if alarm.code == code:
                self.clear_alarm_id(alarm.alarm_id)

    def clear_alarm_id(self, alarm_id: str) -> None:
        alarm = self.alarms.pop(alarm_id, None)
        if alarm is None:
            return
        self.emit_alarm(alarm, "cleared")
        if alarm.code == "microscope_failure":
            self.set(microscope__status="idle")
        elif alarm.code == "fan_filter_unit_failure":
            self.set(booth__fan_filter_units_running=True)

    def emit_alarm(self, alarm: ActiveAlarm, status: str, user: str | None = None) -> None:
        data = {
            "alarm_id": alarm.alarm_id,
            "code": alarm.code,
            "severity": alarm.severity,
            "status": status,
            "message": alarm.message,
        }
        if user is not None:
            data["user"] = user
        self.emit("alarm", data)

    def open_prompt(self, prompt_id: str, text: str, kind: str, job_id: str | None) -> Prompt:
        prompt = Prompt(prompt_id, text, kind, job_id, self.clock.now())
        self.prompts[prompt.prompt_id] = prompt
        self.prompts_changed.set()
        self.prompt_pin.hold()
        self.emit("prompt", self.prompt_json(prompt))
        return prompt

    def prompt_json(self, prompt: Prompt) -> dict[str, Any]:
        return {
            "prompt_id": prompt.prompt_id,
            "text": prompt.text,
            "kind": prompt.kind,
            "job_id": prompt.job_id,
            "raised": stamp(prompt.raised),
            "choices": list(prompt.choices),
        }

    def _close_prompt(self, prompt: Prompt, answer: str, user: str) -> None:
        self.prompts.pop(prompt.prompt_id, None)
        self.prompts_changed.set()
        self.emit(
            "prompt_answered", {"prompt_id": prompt.prompt_id, "answer": answer, "user": user}
        )
        prompt.answered.set()
        if not self.prompts:
            self.prompt_pin.release()

    # --- the API --------------------------------------------------------------------------------

    def _routes(self) -> None:
        s = self.server
        s.route("GET", "/identity", self.get_identity)
        s.route("GET", "/status", self.get_status)
        s.route("GET", "/channels", self.list_channels)
        s.route("GET", "/channels/{channel}", self.get_channel)
        s.route("GET", "/jobs", self.list_jobs)
        s.route("POST", "/jobs", self.submit_job, key_required=True)
        s.route("GET", "/jobs/{job_id}", self.get_job)
        s.route("DELETE", "/jobs/{job_id}", self.cancel_job)
        s.route("POST", "/control", self.control)
        s.route("GET", "/log/jobs", self.robot_jobs)
        s.route("GET", "/log/commands", self.robot_commands)
        s.route("GET", "/prompts", self.list_prompts)
        s.route("POST", "/prompts/{prompt_id}/answer", self.answer_prompt)
        s.route("GET", "/alarms", self.list_alarms)
        s.route("POST", "/alarms/{alarm_id}/acknowledge", self.acknowledge)
        s.route("GET", "/labware", self.labware)
        s.route("GET", "/images", self.list_images)
        s.route("GET", "/images/{image_id}", self.get_image)
        s.route("POST", "/commands/{name}", self.command)

    def get_identity(self, request: HttpRequest) -> Any:
        return {
            "manufacturer": "Robotic Biology Institute Inc.",
            "model": "LabDroid Maholo (simulated)",
            "serial_number": f"SIM-{self.seed:04d}",
            "software_revision": "1.0",
            "api_version": API_VERSION,
        }

    def get_status(self, request: HttpRequest) -> Any:
        runner = self.runner
        status = runner.status if runner is not None and self.runs.running else None
        return {
            "state": VENDOR[self.machine.state],
            "job_id": self.current.job_id if self.current and self.runs.running else None,
            "step": status.step_index if status else None,
            "progress": round(status.progress, 6) if status else None,
            "time": self.now(),
            "event_seq": self.server.log.seq,
        }

    def list_channels(self, request: HttpRequest) -> Any:
        return {"channels": [self.reading(c) for c in self.channels]}

    def get_channel(self, request: HttpRequest) -> Any:
        channel = request.match["channel"]
        if channel not in self.channels:
            raise Problem(404, "Unknown channel", f"no channel {channel}", "unknown-channel")
        published = self._published.get(channel)
        extra = {"n": published[2]} if published is not None else {}
        return self.reading(channel) | extra

    def list_jobs(self, request: HttpRequest) -> Any:
        wanted = request.query.get("status")
        jobs = [j.json() for j in self.jobs.values() if wanted in (None, j.status)]
        return {"jobs": jobs}

    def _job(self, request: HttpRequest) -> Job:
        job = self.jobs.get(request.match["job_id"])
        if job is None:
            raise Problem(404, "Unknown job", f"no job {request.match['job_id']}", "unknown-job")
        return job

    def get_job(self, request: HttpRequest) -> Any:
        return self._job(request).json()

    def submit_job(self, request: HttpRequest) -> Any:
        body = request.body
        if not isinstance(body, dict) or not isinstance(body.get("program"), str):
            raise Problem(400, "Bad Request", "expected {program, run_id, parameters}", "bad-job")
        template = self._template(body)
        parameters = body.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise Problem(400, "Bad Request", "parameters must be an object", "bad-job")
        self._check_parameters(template, parameters)
        job = self._enqueue(
            template, parameters, str(body.get("run_id") or ""), body.get("supervisory_job_id")
        )
        return Reply(201, {"job": job.json(), "event_seq": self.server.log.seq})

    def _enqueue(
        self,
        template: ProgramTemplate,
        parameters: dict[str, Any],
        run_id: str = "",
        supervisory_job_id: str | None = None,
    ) -> Job:
        """Queue a job (a protocol run or one robot job); it starts now if the robot is free."""
        if not self.runs.running and self.machine.state != IDLE:
            raise Problem(
                409,
                "Not ready",
                f"jobs start only in {VENDOR[IDLE]}, the robot is {VENDOR[self.machine.state]}",
                "not-ready",
            )
        job = Job(
            self._next("job", "J"),
            template.name,
            run_id,
            parameters,
            self.clock.now(),
            supervisory_job_id,
            template,
        )
        job.run_id = job.run_id or job.job_id
        self.jobs[job.job_id] = job
        self.emit("job", {"job_id": job.job_id, "status": job.status})
        if not self.runs.running:
            self._start(job)
        return job

    def _template(self, body: dict[str, Any]) -> ProgramTemplate:
        """The job's program: the compiled template it carries, else the profile's program."""
        given = body.get("template")
        if given is not None:
            try:
                template = ProgramTemplate.model_validate(given)
            except ValueError as exc:
                raise Problem(422, "Bad template", str(exc)[:300], "bad-template") from None
            if template.name != body["program"]:
                raise Problem(422, "Bad template", "template.name is not program", "bad-template")
            return template
        try:
            return self.profile.program(body["program"])
        except KeyError:
            raise Problem(
                404, "Unknown program", f"no program {body['program']}", "unknown-program"
            ) from None

    def _check_parameters(self, template: ProgramTemplate, parameters: dict[str, Any]) -> None:
        """Refuse (422, naming the parameter) what the template does not declare, a wrong type
        or unit, NaN or infinity, a value out of range or a required one left out (the kit's
        check; units must be the declared ones)."""
        try:
            given = {name: Given.from_json(raw) for name, raw in parameters.items()}
            check_parameters(template.parameters, given, what=template.name, convert_units=False)
        except ParameterRefused as refused:
            raise Problem(422, "Bad parameter", refused.reason[:300], "param") from None

    def cancel_job(self, request: HttpRequest) -> Any:
        job = self._job(request)
        if job.status == "queued":
            job.status = "cancelled"
            self.emit("job", {"job_id": job.job_id, "status": job.status})
        elif job.status == "running" and self.runner is not None:
            self.cause = "cancel"
            try:
                self.runner.stop()
            except InvalidTransition:
                raise Problem(409, "Not cancellable", "the run cannot stop now", "state") from None
            finally:
                self.cause = None
        else:
            raise Problem(409, "Not cancellable", f"job {job.job_id} is {job.status}", "state")
        return {"job": job.json(), "event_seq": self.server.log.seq}

    def control(self, request: HttpRequest) -> Any:
        body = request.body if isinstance(request.body, dict) else {}
        name = str(body.get("command", ""))
        try:
            command = StateCommand(name)
        except ValueError:
            raise Problem(400, "Bad Request", f"unknown command {name!r}", "bad-command") from None
        if command is StateCommand.START:
            raise Problem(400, "Bad Request", "start a job with POST /jobs", "bad-command")
        try:
            self.runs.command(command)
        except InvalidTransition:
            raise Problem(
                409,
                "Not allowed",
                f"{name} is not allowed in state {VENDOR[self.machine.state]}",
                "state",
            ) from None
        return {"state": VENDOR[self.machine.state], "event_seq": self.server.log.seq}

    def robot_jobs(self, request: HttpRequest) -> Any:
        return {"entries": [e.json() for e in self.robot_log]}

    def robot_commands(self, request: HttpRequest) -> Any:
        wanted = request.query.get("robot_job_id")
        entries = [e for e in self.robot_log if e.robot_job_id == wanted]
        if not entries:
            raise Problem(404, "Unknown robot job", f"no robot job {wanted}", "unknown-job")
        entry = entries[0]
        cycle = COMMAND_CYCLE[entry.job_type]
        failed = {e["index"]: e for e in entry.errors}
        commands = []
        for index in range(1, entry.commands_done + 1):
            error = failed.get(index)
            commands.append(
                {
                    "index": index,
                    "command": cycle[(index - 1) % len(cycle)],
                    "outcome": error["outcome"] if error else "succeeded",
                    "cause": error["cause"] if error else None,
                }
            )
        return {"robot_job_id": entry.robot_job_id, "commands": commands}

    def list_prompts(self, request: HttpRequest) -> Any:
        return {"prompts": [self.prompt_json(p) for p in self.prompts.values()]}

    def answer_prompt(self, request: HttpRequest) -> Any:
        prompt = self.prompts.get(request.match["prompt_id"])
        if prompt is None:
            raise Problem(404, "Unknown prompt", f"no open prompt {request.match['prompt_id']}")
        body = request.body if isinstance(request.body, dict) else {}
        answer, user = str(body.get("answer", "done")), str(body.get("user", "-"))
        if prompt.kind == "intervention":
            self._close_prompt(prompt, answer, user)
        else:
            try:
                self.runs.answer(prompt.prompt_id, answer, user)
            except NoSuchPrompt as gone:
                raise Problem(404, "Unknown prompt", str(gone)) from None
        return {"prompt_id": prompt.prompt_id, "event_seq": self.server.log.seq}

    def list_alarms(self, request: HttpRequest) -> Any:
        return {
            "alarms": [
                {
                    "alarm_id": a.alarm_id,
                    "code": a.code,
                    "severity": a.severity,
                    "message": a.message,
                    "raised": stamp(a.raised),
                    "acknowledged_by": a.acknowledged_by,
                }
                for a in self.alarms.values()
            ]
        }

    def acknowledge(self, request: HttpRequest) -> Any:
        alarm = self.alarms.get(request.match["alarm_id"])
        if alarm is None:
            raise Problem(404, "Unknown alarm", f"no active alarm {request.match['alarm_id']}")
        body = request.body if isinstance(request.body, dict) else {}
        user = str(body.get("user", "-"))
        if alarm.acknowledged_by is None:
            alarm.acknowledged_by = user
            self.emit_alarm(alarm, "acknowledged", user)
        return {"alarm_id": alarm.alarm_id, "event_seq": self.server.log.seq}

    def labware(self, request: HttpRequest) -> Any:
        plates = int(self.values["booth.plates_in_booth"])
        return {
            "plates": [
                {
                    "plate_id": f"P{n}",
                    "format": "6-well",
                    "wells": [f"{row}{col}" for row in "AB" for col in (1, 2, 3)],
                    "location": "incubator",
                }
                for n in range(1, plates + 1)
            ],
            "pipettes": [{"volume": v, "unit": "uL"} for v in self.pipette_volumes()],
            "tips": {"loaded": self.values["pipettes.tip_loaded"]},
        }

    def pipette_volumes(self) -> list[float]:
        """The fixed pipette volumes of the profile (uL)."""
        table = self.profile.vendor_data.get("fixed_pipette_volumes")
        volumes = table.get("volumes") if isinstance(table, dict) else None
        if not isinstance(volumes, list):
            return []
        return [float(v) for v in volumes if isinstance(v, int | float)]

    def list_images(self, request: HttpRequest) -> Any:
        return {"images": [meta for _png, meta in self.images.values()]}

    def get_image(self, request: HttpRequest) -> Any:
        found = self.images.get(request.match["image_id"])
        if found is None:
            raise Problem(404, "Unknown image", f"no image {request.match['image_id']}")
        return Reply(200, found[0], content_type="image/png")

    def command(self, request: HttpRequest) -> Any:
        name = request.match["name"]
        spec = next((c for c in self.profile.commands if c.name == name), None)
        if spec is None:
            raise Problem(404, "Unknown command", f"no command {name}", "unknown-command")
        body = request.body if isinstance(request.body, dict) else {}
        params = body.get("parameters") or {}
        if name == "capture_image":
            plate = str(_plain(params.get("plate_id")) or "P1")
            job = self.current or Job("J0000", "-", "-", {}, self.clock.now())
            image_id = self._capture_growth(job, plate)
            self.observe()
            return {"command": name, "data": {"image_id": image_id}}
        if name == "export_robot_log":
            return {"command": name, "data": {"entries": len(self.robot_log)}}
        if name == "confirm_handover":
            self.set(booth__handover="none")
            return {"command": name, "data": {"handover": _plain(params.get("handover"))}}
        if name == "submit_job":
            job = self._enqueue(*self._robot_job_template(params))
            data: dict[str, Any] = {"job_id": job.job_id, "program": job.program}
        elif name == "resume_job":
            data = {"prompts": self._resume(str(body.get("user") or "-"))}
        else:  # abort_job
            data = {"job_id": self._abort()}
        return {"command": name, "data": data, "event_seq": self.server.log.seq}

    def _robot_job_template(
        self, params: Mapping[str, Any]
    ) -> tuple[ProgramTemplate, dict[str, Any]]:
        """`submit_job`'s robot job as a one-step program (and its parameters for the queue)."""
        job_type = _plain(params.get("job_type"))
        if job_type not in COMMANDS_PER_JOB:
            raise Problem(
                422, "Unknown job type", f"{job_type!r} is not one of {list(COMMANDS_PER_JOB)}"
            )
        plates = [p.strip() for p in str(_plain(params.get("plate_ids")) or "").split(",")]
        if not any(plates):
            raise Problem(422, "No plates", "plate_ids names no plate", "param")
        volume = _plain(params.get("volume"))
        if volume is not None and not self.pipettable(float(volume)):
            raise Problem(
                422,
                "Not pipettable",
                f"{volume} uL is not a sum of at most {self.pipettes_combined()} of the pipettes "
                f"{self.pipette_volumes()} uL",
                "param",
            )
        step = ProgramStep(
            name=f"{job_type} of {', '.join(p for p in plates if p)}",
            unit_operation=JOB_OPERATIONS[job_type],
            functional_unit="robot",
            duration=Quantity(value=round(MEAN_JOB_SECONDS / 0.8), unit="s"),
            parameters={"job": job_type},
        )
        template = ProgramTemplate(
            name=f"robot job {job_type}", version="1", author="maholo-sim", steps=[step]
        )
        return template, {k: v for k, v in params.items() if k != "job_type"}

    def pipettes_combined(self) -> int:
        """How many fixed pipettes one volume may combine (the profile's ``max_combined``)."""
        table = self.profile.vendor_data.get("fixed_pipette_volumes")
        most = table.get("max_combined") if isinstance(table, dict) else None
        return most if isinstance(most, int) else 1

    def pipettable(self, volume: float) -> bool:
        """Whether `volume` (uL) is a sum of at most `pipettes_combined()` pipette volumes."""
        volumes = self.pipette_volumes()
        sums = {0.0}
        for _ in range(self.pipettes_combined()):
            sums |= {s + v for s in sums for v in volumes}
        return any(abs(volume - s) < 1e-9 for s in sums)

    def _resume(self, user: str) -> list[str]:
        """Answer the current job's open interventions (the robot job carries on)."""
        job = self.current.job_id if self.current is not None and self.runs.running else None
        open_ = [p for p in self.prompts.values() if p.kind == "intervention" and p.job_id == job]
        if not open_:
            raise Problem(409, "Nothing to resume", "no job waits for an intervention", "state")
        for prompt in open_:
            self._close_prompt(prompt, "done", user)
        return [p.prompt_id for p in open_]

    def _abort(self) -> str:
        """Abort the running job (as ``POST /control {"command": "abort"}`` would)."""
        job, runner = self.current, self.runner
        if job is None or runner is None or not self.runs.running:
            raise Problem(409, "Nothing to abort", "no job is running", "state")
        self.cause = "abort_job"
        try:
            runner.abort()
        except InvalidTransition:
            raise Problem(409, "Not abortable", "the job cannot abort now", "state") from None
        finally:
            self.cause = None
        return job.job_id

    # --- housekeeping ---------------------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        await self.runs.close()
        tasks = list(self._tasks)
        if self.work_task is not None:
            tasks.append(self.work_task)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        self.prompt_pin.release()


def _plain(value: Any) -> Any:
    return value.get("value") if isinstance(value, dict) else value


def _number(value: Any, default: float) -> float:
    value = _plain(value)
    return float(value) if isinstance(value, int | float) else default


def _numbers(parameters: Mapping[str, Any]) -> dict[str, PropertyValue]:
    out: dict[str, PropertyValue] = {}
    for name, value in parameters.items():
        plain = _plain(value)
        if isinstance(plain, bool | int | float | str):
            out[name] = plain
    return out


def _render(fraction: float, seed: int, meta: Mapping[str, Any]) -> bytes:
    from cellauto.sim.images import render_confluence

    return render_confluence(
        min(1.0, max(0.0, fraction)), seed=seed, size=64, metadata=dict(meta)
    ).png
