"""The reference incubator's simulator: the engine's clock, process model and program runner
behind the poll-only JSON-lines protocol on a loopback TCP port. Knows nothing of the adapter."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar

from cellauto.errors import InvalidTransition, SimulationError
from cellauto.schema import DeviceProfile, Q, Result
from cellauto.sim import Bioreactor, Clock, ProgramRunner, SimHandle
from cellauto.sim.servers.stream import TcpServer, frame_handler, serve_tcp
from cellauto.state import StateMachine
from cellauto.transport import LineFramer

CHANNELS = {
    "chamber.temperature": "temperature",
    "chamber.glucose": "glucose",
    "chamber.cell_density": "cell_density",
}


@dataclass
class Incubator:
    """The device behind the wire: one bioreactor, at most one program run at a time."""

    profile: DeviceProfile
    clock: Clock
    model: Bioreactor
    machine: StateMachine = field(default_factory=lambda: StateMachine("incubator-sim"))
    runner: ProgramRunner | None = None
    task: asyncio.Task[str] | None = None
    result: Result | None = None
    seq: int = 0

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        self.model.advance_to(self.clock.monotonic())
        if op == "id":
            return {
                "id": {
                    "manufacturer": "cellauto",
                    "model": "Reference incubator",
                    "serial_number": "SIM-1",
                    "software_revision": "1.0",
                }
            }
        if op == "get":
            return self._get(str(request.get("channel")))
        if op == "status":
            return self._status()
        if op == "start":
            return self._start(request)
        if op == "command":
            return self._command(str(request.get("command")))
        if op == "answer":
            if self.runner is None or self.runner.prompt is None:
                raise SimulationError("no prompt is open")
            self.runner.answer_prompt(str(request.get("text", "")))
            return {}
        raise SimulationError(f"unknown op {op!r}")

    def _get(self, channel: str) -> dict[str, Any]:
        if channel not in CHANNELS:
            raise SimulationError(f"unknown channel {channel!r}")
        reading = self.model.read(CHANNELS[channel])
        value, unit = reading.value, reading.unit
        self.seq += 1
        return {"value": value, "unit": unit, "time": self.clock.now().isoformat(), "seq": self.seq}

    def _status(self) -> dict[str, Any]:
        runner = self.runner
        status = None if runner is None else runner.status
        return {
            "state": str(self.machine.state),
            "step": None if status is None else status.step_index,
            "name": None if status is None else status.step_name,
            "progress": 0.0 if status is None else status.progress,
            "remaining": None if status is None else status.remaining,
            "prompt": None if runner is None else runner.prompt,
            "result": None if self.result is None else self.result.model_dump(mode="json"),
        }

    def _start(self, request: dict[str, Any]) -> dict[str, Any]:
        template = self.profile.program(str(request["program"]))
        self.machine.check("start")
        parameters = {k: Q(v[0], v[1]) for k, v in request.get("parameters", {}).items()}
        self.result = None
        self.runner = ProgramRunner(
            template,
            self.clock,
            machine=self.machine,
            parameters=parameters,
            on_step_start={"seed": lambda _ctx: self.model.seed(2e8, 100.0)},
        )
        self.task = asyncio.create_task(self._run(str(request["run"])))
        return {}

    async def _run(self, run_id: str) -> str:
        assert self.runner is not None
        outcome = await self.runner.run()
        started = self.runner.started or self.clock.now()
        stopped = self.runner.stopped or self.clock.now()
        self.model.advance_to(self.clock.monotonic())
        self.result = Result(
            device_id="incubator-sim",
            device_program_run_id=run_id,
            program=self.runner.program.name,
            program_version=self.runner.program.version,
            template_hash=self.runner.program.content_hash,
            started=started,
            stopped=stopped,
            outcome=outcome,
            total_runtime=stopped - started,
            total_pause_time=timedelta(seconds=self.runner.paused),
            properties={"final_density": Q(self.model.true_value("cell_density"), "{cells}/mL")},
        )
        return outcome

    def _command(self, command: str) -> dict[str, Any]:
        runner = self.runner
        if runner is not None and runner.outcome is None:
            getattr(runner, command)()
        else:
            self.machine.command(command)
            while self.machine.state.is_acting:
                self.machine.state_complete()
        return {"state": str(self.machine.state)}


class RunningIncubator(SimHandle):
    """A started reference simulator: the whole simulator side of a device author's work is
    this subclass (start, stop, wire faults; alarms come from the base, which refuses every
    code as the profile declares none) plus the device model above."""

    kind: ClassVar[str] = "incubator"

    device: Incubator
    server: TcpServer

    async def _start(self) -> None:
        self.device = Incubator(self.profile, self.clock, Bioreactor(seed=self.options.seed))
        clock, device = self.clock, self.device

        async def respond(payload: bytes) -> bytes:
            with clock.busy():
                try:
                    reply = {"ok": True, **device.handle(json.loads(payload))}
                except (SimulationError, InvalidTransition, KeyError, ValueError) as exc:
                    reply = {"ok": False, "error": str(exc)}
                return json.dumps(reply).encode()

        self.server = await serve_tcp(
            frame_handler(lambda: LineFramer(b"\n"), respond), port=self.options.port
        )
        self.url = f"incubator+tcp://127.0.0.1:{self.server.port}"

    async def _stop(self) -> None:
        if hasattr(self, "device") and self.device.task is not None:
            self.device.task.cancel()
            await asyncio.gather(self.device.task, return_exceptions=True)
        if hasattr(self, "server"):
            await self.server.close()

    async def _disconnect(self, duration: float) -> None:
        await self.server.disconnect()

    def _stall(self, duration: float) -> None:
        self.server.stall(0.2)  # virtual durations become a short real one

    def _corrupt(self, frames: int) -> None:
        self.server.corrupt(frames)

    def _model(self) -> Bioreactor:
        return self.device.model


async def start_simulator(
    profile: DeviceProfile, options: Mapping[str, str], *, clock: Clock | None = None
) -> RunningIncubator:
    """Start the simulator on a loopback port (the common options; default speed max)."""
    return await RunningIncubator.launch(profile, options, clock=clock, default_speed="max")
