"""The simulated Cocoon on the wire: `CocoonDevice` serves a `CocoonProcess` through the OPC UA
event-log family (schemas/protocols/cocoon.md): the channels' variables, the step events and
the protocol's own methods; state, prompt, alarm and result events, and the methods every
member of the family shares, come with the family base.

Every channel is updated at its profile sample period (channels without one when they change);
each update is one OPC UA data change with the device's virtual time as source timestamp. At
``speed=max`` an open operator prompt holds virtual time still: the operator answers at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import ValidationError

from cellauto.errors import InvalidTransition
from cellauto.schema import DeviceProfile, ProgramTemplate, PropertyValue
from cellauto.sim import Clock, RunEvent
from cellauto.sim.families.opcua_log import OpcUaEventLogDevice
from cellauto.sim.lifecycle import SimRun
from cellauto.sim.params import Given, ParameterRefused, check_parameters
from cellauto.sim.sampling import Periodic
from cellauto.sim.servers.opcua import MethodFailed
from cellauto.sim.truth import GroundTruth
from cellauto.state import IDLE, StateCommand, StateMachine

from .address_space import (
    EVENT_TYPES,
    NAMESPACE,
    TABLES,
    VENDOR_STATES,
    build,
    channel_path,
    status_path,
)
from .device import SETPOINTS, CocoonProcess


class CocoonDevice(OpcUaEventLogDevice):
    """One simulated Cocoon serving its protocol through `server` (see the module doc)."""

    SOURCE: ClassVar[str] = "Cocoon"

    def __init__(
        self,
        profile: DeviceProfile,
        clock: Clock,
        *,
        seed: int,
        serial: str,
        port: int = 0,
        truth: GroundTruth | None = None,
        anonymous: Literal["read", "operate"] = "read",
    ) -> None:
        self.profile = profile
        self.serial = serial
        self.channels = profile.channels()
        self.process = CocoonProcess(profile, clock, seed=seed, serial=serial)
        handlers = self.family_methods() | self._methods()
        super().__init__(
            clock,
            build(profile, self._identification(), handlers),
            profile=profile,
            machine=StateMachine(serial, initial=IDLE),
            vendor_states=VENDOR_STATES,
            severities=dict(TABLES.severities),
            namespace=NAMESPACE,
            event_types=EVENT_TYPES,
            status_path=status_path,
            name=f"Cocoon simulator {serial}",
            port=port,
            anonymous=anonymous,
            truth=truth,
        )
        self.values: dict[str, Any] = {}
        self._status_of: dict[str, str] = {}
        self._on_change = [n for n, ch in self.channels.items() if ch.sample_period is None]
        self.sensor_filter: Callable[[str, float], float | None] = lambda _c, v: v
        self.protocol: ProgramTemplate | None = None

    async def start(self) -> None:
        """Serve: the OPC UA server and event publisher (the family base), and the sampler."""
        await super().start()
        self.spawn(self._sampler(), "sampler")

    # -- alarm injection ---------------------------------------------------------------------

    def inject(self, code: str) -> None:
        """Make the condition behind a profile alarm true until `clear_alarm`: the device then
        raises the alarm as it would for the real condition."""
        self.process.inject(code)

    def raise_alarm(self, code: str) -> str:
        """Inject `code`'s condition and raise its alarm now (it stays active, whatever the
        readings, until `clear_alarm`); returns the alarm id."""
        self.process.inject(code)
        self.process.pinned.add(code)
        active = self.alarms.active(code)
        return active.alarm_id if active is not None else self.raise_book_alarm(code)

    def clear_alarm(self, code: str) -> None:
        """End an injected condition: the alarm clears at the next update once the readings
        are back inside its limits."""
        self.process.release(code)

    # -- sampling ----------------------------------------------------------------------------

    async def _sampler(self) -> None:
        schedule = Periodic(self.profile)
        origin = self.process.origin
        while True:
            await self.clock.sleep_until(origin + schedule.next_at)
            with self.clock.busy():
                self.process.advance()
                for channel in SETPOINTS:
                    value = await self.server.get(channel_path(self.ns, channel))
                    self.process.loop(channel).setpoint = float(value)
                self.process.expansion()
                at, names = schedule.pop_due()
                stamp = self.clock.at(origin + at)
                for name in names:
                    await self._publish_value(name, self.process.measure(name), stamp)
                await self._publish_changes()
                self._check_alarms()
                await self._publish_progress()

    async def _publish_changes(self) -> None:
        """Publish the channels without a sample period whose value changed."""
        for name in self._on_change:
            await self._publish_value(name, self.process.measure(name))

    async def _publish_value(
        self, channel: str, value: Any, period: datetime | None = None
    ) -> None:
        """Update a channel's variable. A periodic update (`period`: its instant
        ``origin + k * sample_period``, the source timestamp) is always written, so the k-th
        write of a channel is its publication k; an on-change channel's unchanged value and
        status is no data change."""
        status = "Good"
        if isinstance(value, float):
            filtered = self.sensor_filter(channel, value)
            if filtered is None:
                status, value = "BadSensorFailure", self.values.get(channel, value)
            else:
                value = filtered
        unchanged = self.values.get(channel) == value and self._status_of.get(channel) == status
        if unchanged and period is None:
            return
        self.values[channel] = value
        self._status_of[channel] = status
        now = period if period is not None else self.clock.now()
        await self.server.set(channel_path(self.ns, channel), value, now, status=status)
        self.truth.sample(channel, now, _truth_value(value))

    async def _publish_progress(self) -> None:
        run = self.process.run
        if run is not None and run.runner.outcome is None:
            status = run.runner.status
            await self.set_status(Progress=status.progress, RemainingTime=status.remaining)

    def _check_alarms(self) -> None:
        active = self.alarms.active_codes()
        for code, on in self.process.alarm_states(self.values, active).items():
            if on and code not in active:
                self.raise_book_alarm(code)
            elif not on and code in active:
                self.clear_book_alarm(code)

    async def after_events(self) -> None:
        await self._publish_changes()

    # -- events of the Cocoon's own ----------------------------------------------------------

    def run_step(self, run: SimRun, event: RunEvent) -> None:
        status = event.status
        assert event.step is not None
        self.event(
            "step",
            event.step.name,
            RunId=run.run_id,
            StepNumber=status.step_index or 0,
            StepName=event.step.name,
            UnitOperation=event.step.unit_operation,
            Progress=status.progress,
            RemainingTime=status.remaining,
        )

    def result_properties(self, run: SimRun) -> dict[str, Any]:
        return self.process.result_properties()

    # -- methods of the Cocoon's own (protocol section 3) ------------------------------------

    def _methods(self) -> dict[str, Callable[..., Any]]:
        return {
            "LoadProtocol": self._load_protocol,
            "Start": self._start,
            "TakeSample": self._take_sample,
            "CheckCassette": self._check_cassette,
            "ValidateProtocol": self._validate_protocol,
            "ReleaseCassette": self._release_cassette,
        }

    async def _load_protocol(self, definition: str, content_hash: str) -> None:
        if self.runs.running:
            raise MethodFailed("BadInvalidState", "a protocol is running")
        try:
            data = json.loads(definition)
        except ValueError as exc:
            raise MethodFailed("BadInvalidArgument", f"definition is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise MethodFailed("BadInvalidArgument", "definition is not a JSON object")
        try:
            computed = protocol_hash(data)
        except ValueError:
            raise MethodFailed("BadInvalidArgument", "definition holds NaN or infinity") from None
        if content_hash != computed:
            raise MethodFailed("BadInvalidArgument", "content hash does not match the definition")
        try:
            template = ProgramTemplate.model_validate(data | {"content_hash": ""})
        except ValidationError as exc:
            raise MethodFailed("BadInvalidArgument", f"invalid protocol: {exc}") from None
        self.protocol = template

    async def _start(
        self, run_id: str, batch_id: str, patient_id: str, parameters: str
    ) -> tuple[float, int]:
        if self.protocol is None:
            raise MethodFailed("BadInvalidState", "no protocol loaded; call LoadProtocol first")
        try:
            self.machine.check(StateCommand.START)
        except InvalidTransition as exc:
            raise MethodFailed("BadInvalidState", str(exc)) from None
        params = self._parameters(self.protocol, parameters)
        if not self.process.ready(self.protocol):
            raise MethodFailed("BadResourceUnavailable", "no cassette seated")
        run = self.process.runner(
            self.protocol,
            run_id or f"{self.serial}-{self.seq}",
            machine=self.machine,
            parameters=params,
        )
        await self.set_status(
            RunId=run.run_id, ProgramName=self.protocol.name, BatchId=batch_id, PatientId=patient_id
        )
        self.runs.start(run.runner, run.run_id, on_end=self.process.ended)
        started = asyncio.Event()
        remove = run.runner.add_listener(lambda _e: started.set())
        await started.wait()
        remove()
        return run.runner.status.remaining, self.seq

    def _parameters(self, protocol: ProgramTemplate, text: str) -> dict[str, PropertyValue]:
        """Start's Parameters (protocol section 3) checked against the protocol's own."""
        try:
            raw = json.loads(text or "{}")
        except ValueError as exc:
            raise MethodFailed("BadInvalidArgument", f"Parameters is not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise MethodFailed("BadInvalidArgument", "Parameters is not a JSON object")
        try:
            given = {name: Given.from_json(value) for name, value in raw.items()}
            return check_parameters(protocol.parameters, given, what=protocol.name)
        except ParameterRefused as exc:
            raise MethodFailed("BadInvalidArgument", exc.reason) from None

    async def _take_sample(self, volume: float) -> str:
        spec = next(c for c in self.profile.commands if c.name == "take_sample")
        try:
            check_parameters(spec.parameters, {"volume": Given(volume)}, what="TakeSample")
        except ParameterRefused as exc:
            raise MethodFailed("BadInvalidArgument", exc.reason) from None
        sample_id = self.process.take_sample(volume)
        if sample_id is None:
            raise MethodFailed("BadInvalidState", "not enough culture in the chamber")
        return sample_id

    async def _check_cassette(self) -> str:
        if not self.process.measure("cassette.present"):
            raise MethodFailed("BadResourceUnavailable", "no cassette seated")
        return self.process.check_cassette()

    async def _validate_protocol(self) -> str:
        problems = []
        if self.protocol is None:
            problems.append("no protocol loaded")
        elif not self.process.ready(self.protocol):
            problems.append("no cassette seated")
        return json.dumps(problems)

    async def _release_cassette(self) -> None:
        if self.runs.running:
            raise MethodFailed("BadInvalidState", "a protocol is running")
        self.process.release_cassette()

    def _identification(self) -> dict[str, str]:
        return {
            "Manufacturer": "cellauto (simulated Lonza Cocoon)",
            "Model": "Cocoon Platform (simulator)",
            "SerialNumber": self.serial,
            "SoftwareRevision": "cellauto-sim 1",
            "DeviceRevision": "protocol v1",
        }


def protocol_hash(definition: dict[str, Any]) -> str:
    """LoadProtocol's ContentHash of a definition (protocol section 3): SHA-256, lower-case hex,
    of its canonical JSON without the ``content_hash`` member."""
    body = {k: v for k, v in definition.items() if k != "content_hash"}
    text = json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def _truth_value(value: Any) -> float | str | bool:
    if isinstance(value, bool | str | float):
        return value
    if isinstance(value, int):
        return float(value)
    return str(value)
