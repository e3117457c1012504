"""A mock device for unit tests of orchestration code: records calls, lets a test inject
samples, events, alarms and states. It has no behaviour; simulators are for behaviour."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from cellauto.driver import Device
from cellauto.errors import DeviceError
from cellauto.schema import (
    Alarm,
    CommandResult,
    DeviceInfo,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Quality,
    Result,
    Sample,
)
from cellauto.state import State, StateCommand


class MockDevice(Device):
    """Records every call in `calls`; `inject_*` methods play the device's side."""

    kind = "mock"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._values: dict[str, Sample] = {}
        self._seq = 0

    async def _connect(self) -> DeviceInfo:
        self.calls.append(("connect", {}))
        return DeviceInfo(
            manufacturer=self.profile.manufacturer,
            model=f"{self.profile.model} (mock)",
            serial_number="MOCK",
        )

    async def _close(self) -> None:
        self.calls.append(("close", {}))

    async def _read(self, channel: str) -> Sample:
        self.calls.append(("read", {"channel": channel}))
        if channel not in self._values:
            raise DeviceError(self.device_id, f"read {channel}", "no value injected by the test")
        return self._values[channel]

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        self.calls.append(("start_program", {"program": template.name, "parameters": parameters}))

    async def _send_state_command(self, command: StateCommand) -> None:
        self.calls.append((str(command), {}))

    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        self.calls.append(("acknowledge", {"alarm_id": alarm.alarm_id, "user": user}))

    async def _command(self, name: str, parameters: dict[str, PropertyValue]) -> CommandResult:
        self.calls.append((name, dict(parameters)))
        return CommandResult(
            command_id=f"mock-{len(self.calls)}",
            device_id=self.device_id,
            name=name,
            accepted=True,
            finished_at=self.time.now(),
        )

    # -- injection -----------------------------------------------------------------------------

    def inject_sample(
        self,
        channel: str,
        value: float | int | bool | str,
        *,
        unit: str | None = None,
        quality: Quality = Quality.GOOD,
        timestamp: datetime | None = None,
    ) -> Sample:
        """Deliver a sample as if the device sent it (unit defaults to the profile's)."""
        descriptor = self.profile.channel(channel)
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        sample = Sample(
            device_id=self.device_id,
            channel=channel,
            timestamp=timestamp or datetime.now(UTC),
            value=value,
            unit=(unit or descriptor.unit) if numeric else None,
            quality=quality,
            seq=self._seq,
        )
        self._seq += 1
        self._values[channel] = sample
        self.report_sample(sample)
        return sample

    async def inject_state(self, state: State | str) -> None:
        """Report a state as if the device entered it."""
        await self.report_state(State.parse(state) if isinstance(state, str) else state)

    async def inject_alarm(self, alarm: Alarm) -> None:
        """Report an alarm (or a change to one) as if the device raised it."""
        await self.report_alarm(alarm)

    async def inject_result(self, result: Result) -> None:
        """Complete the current run with `result`."""
        await self.report_result(result)
