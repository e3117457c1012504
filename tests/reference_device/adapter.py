"""The reference incubator's adapter: polls the device over cellauto.transport and reports
what it sees through the Device base class. Knows nothing of the simulator."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import datetime, timedelta
from typing import Any, ClassVar

from cellauto.driver import Device, OperatorPrompt, TimeSource
from cellauto.errors import CommandRejected, ProtocolError
from cellauto.registry import DeviceUrl
from cellauto.schema import (
    Alarm,
    DeviceInfo,
    DeviceProfile,
    EventKind,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Quantity,
    Result,
    Sample,
)
from cellauto.state import State, StateCommand
from cellauto.transport import Backoff, LineFramer, StreamTransport, TcpConnector


class IncubatorAdapter(Device):
    """Adapter for the reference incubator (``incubator+tcp://host:port?poll=0.02``)."""

    kind: ClassVar[str] = "incubator"
    transports: ClassVar[tuple[str, ...]] = ("tcp",)

    def __init__(
        self, device_id: str, profile: DeviceProfile, url: DeviceUrl, *, time: TimeSource | None
    ) -> None:
        super().__init__(device_id, profile, time=time, timeout=5.0)
        host, _, port = url.address.partition(":")
        self.poll_interval = float(url.options.get("poll", "0.02"))
        self.transport = StreamTransport(
            TcpConnector(host, int(port)),
            LineFramer(b"\n"),
            device=device_id,
            reconnect=Backoff(initial=0.01, max_delay=0.2, seed=1),
            on_event=lambda event: self.report_event(
                EventKind.CONNECTION_CHANGED, message=event.state, data={"detail": event.detail}
            ),
        )
        self._poller: asyncio.Task[None] | None = None
        self._result_reported = False

    async def _call(self, operation: str, **request: Any) -> dict[str, Any]:
        raw = await self.transport.request(json.dumps(request).encode(), 2.0, operation=operation)
        try:
            reply: dict[str, Any] = json.loads(raw)
        except ValueError:
            raise ProtocolError(self.device_id, operation, "reply is not JSON", raw=raw) from None
        if not reply.get("ok"):
            raise CommandRejected(self.device_id, operation, str(reply.get("error")))
        return reply

    async def _connect(self) -> DeviceInfo:
        await self.transport.open()
        info = DeviceInfo(**(await self._call("connect", op="id"))["id"])
        await self._poll_once()
        self._poller = asyncio.create_task(self._poll())
        return info

    async def _close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        await self.transport.close()

    async def _read(self, channel: str) -> Sample:
        reply = await self._call(f"read {channel}", op="get", channel=channel)
        sample = Sample(
            device_id=self.device_id,
            channel=channel,
            timestamp=datetime.fromisoformat(reply["time"]),
            value=float(reply["value"]),
            unit=reply["unit"],
            seq=int(reply["seq"]),
        )
        self.report_sample(sample)
        return sample

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        wire = {
            name: [value.value, value.unit]
            for name, value in parameters.items()
            if isinstance(value, Quantity)
        }
        self._result_reported = False
        await self._call(
            f"start_program {template.name}",
            op="start",
            program=template.name,
            run=run.device_program_run_id,
            parameters=wire,
        )

    async def _send_state_command(self, command: StateCommand) -> None:
        await self._call(str(command), op="command", command=str(command))
        await self._poll_once()

    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        raise CommandRejected(self.device_id, f"acknowledge {alarm.alarm_id}", "no alarms here")

    async def _answer_prompt(self, prompt: OperatorPrompt, answer: str, user: str) -> None:
        await self._call(f"answer_prompt {prompt.prompt_id}", op="answer", text=answer)
        self.report_prompt_answered(prompt.prompt_id, answer, user)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            with contextlib.suppress(Exception):
                await self._poll_once()

    def _track_prompt(self, status: dict[str, Any]) -> None:
        run = self.current_run
        prompt_id = f"{run.device_program_run_id if run else '-'}-step{status.get('step')}"
        if status.get("prompt"):
            self.report_prompt(
                OperatorPrompt(prompt_id, self.device_id, str(status["prompt"]), self.time.now())
            )
        else:
            for prompt in self.prompts:  # answered elsewhere (at the device)
                self.report_prompt_answered(prompt.prompt_id, "", "device")

    async def _poll_once(self) -> None:
        status = await self._call("poll status", op="status")
        result = status.get("result")
        if result is not None and not self._result_reported:
            self._result_reported = True
            await self.report_result(Result.model_validate(result))
        if status.get("step") is not None:
            remaining = status.get("remaining")
            await self.report_progress(
                progress=float(status["progress"]),
                remaining=None if remaining is None else timedelta(seconds=remaining),
                step_name=status.get("name"),
                step_number=int(status["step"]),
            )
        self._track_prompt(status)
        await self.report_state(State.parse(status["state"]))
        for channel in self.profile.channels():
            await self._read(channel)
