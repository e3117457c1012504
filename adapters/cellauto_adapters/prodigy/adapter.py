"""`ProdigyAdapter`: the CliniMACS Prodigy through cellauto's serial protocol profile
(schemas/protocols/prodigy.md), over `cellauto.transport` only.

The framed-stream family base (`cellauto.adapter.FramedEventDevice`) carries requests and
replies; its event frames go to an `EventSequencer`, which applies them in event-seq order. A
gap in event seqs (a corrupt or lost frame, a pulled cable), a reconnect or a PING reporting a
newer event is filled from the device's log with `LOG from=<first missing>`; what the log no
longer holds is recorded as one lost range. A command returns once the events the device sent
before its reply are applied.
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from cellauto.adapter import Conformance, FramedEventDevice, ReadBack
from cellauto.driver import OperatorPrompt
from cellauto.schema import (
    Alarm,
    AlarmSeverity,
    CommandResult,
    DeviceInfo,
    EventKind,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Quality,
    Sample,
)
from cellauto.state import StateCommand

from .codec import CODEC, SEQ_MAX, Message, params, quantities, reply_data

__all__ = ["ProdigyAdapter"]


class ProdigyAdapter(FramedEventDevice[Message]):
    """Miltenyi CliniMACS Prodigy (cellauto's own serial protocol; see the protocol profile).

    URL options: those of `cellauto.adapter.CONNECTION` (``timeout``, ``heartbeat`` between
    PINGs, ``capture``, ``reconnect_attempts``, ``reconnect_time``), ``baudrate`` (serial,
    115200), ``request_timeout`` (s per attempt, 2), ``retries`` (resends of one request, 3).
    ``prodigy+replay://<capture>`` replays a capture.
    """

    kind = "prodigy"
    conformance: ClassVar[Conformance] = Conformance(
        program="TCT",
        test_options={"request_timeout": "0.3", "heartbeat": "0.2"},
        values_recoverable=True,
        outage_hours=None,
    )
    codec = CODEC
    resend: ClassVar[dict[str, float]] = {"E01": 0.0, "E05": 0.1}  # E05: busy, 100 ms

    async def open_session(self, operation: str) -> tuple[DeviceInfo, int]:
        """HELLO (a new session), then SUB to every channel."""
        hello = await self.request("HELLO", {}, operation=operation)
        subscribed = await self.request("SUB", {"ch": "*"}, operation=operation)
        info = DeviceInfo(
            manufacturer=hello.text("manufacturer"),
            model=hello.text("model"),
            serial_number=hello.text("serial"),
            software_revision=hello.get("sw") or "",
            hardware_revision=hello.get("hw") or "",
            device_class="cell processor",
            vendor_data={
                "protocol": "cellauto prodigy serial v1",
                "last_event": hello.text("last"),
            },
        )
        return info, subscribed.integer("last")

    async def sync(self, operation: str) -> None:
        reply = await self.request("STATE", {}, operation=operation)
        await self.report_state(self.vendor_state(reply.text("state"), operation))

    async def probe(self) -> int | None:
        reply = await self.request("PING", {}, operation="heartbeat", retries=0)
        last = reply.get("last")
        return int(last) if last is not None and last.isdigit() else None

    async def read_log(self, first: int) -> ReadBack[Message]:
        """``LOG from=first``: the device sends the logged events as `L` frames (offered to the
        sequencer by the reader), then a reply whose ``lost`` counts what it no longer held."""
        reply = await self.request("LOG", {"from": str(first)}, operation="log read-back")
        lost = int(reply.get("lost") or "0")
        return ReadBack(lost=(first, (first + lost - 2) % SEQ_MAX + 1) if lost else None)

    async def apply_event(self, seq: int, m: Message) -> None:
        verb = m.verb
        if verb == "SAMPLE":
            self.report_sample(self._sample(m))
        elif verb == "STATE":
            await self.report_state(self.vendor_state(m.text("state"), "apply STATE"))
        elif verb == "STEP":
            await self.report_progress(
                progress=m.number("progress"),
                remaining=timedelta(seconds=m.number("remaining")),
                step_name=m.text("name"),
                step_number=m.integer("n"),
            )
        elif verb == "PROMPT":
            self.report_prompt(
                OperatorPrompt(
                    prompt_id=m.text("id"),
                    device_id=self.device_id,
                    text=m.text("text"),
                    raised_at=m.time("t"),
                )
            )
        elif verb == "PROMPT_DONE":
            self.report_prompt_answered(m.text("id"), m.get("a") or "", m.get("user") or "")
        elif verb == "ALARM":
            await self._alarm(m)
        elif verb == "RESULT":
            await self._result(m)
        else:
            self.report_event(EventKind.NOTE, message=f"unknown event {verb}", data={"seq": seq})

    def _sample(self, m: Message, *, publish: bool = True) -> Sample:
        channel = m.text("ch")
        quality = Quality(m.get("q") or "good")
        count = m.get("n")  # the device's per-channel publication counter, where it sends one
        seq = int(count) if count is not None and count.isdigit() else None
        value: float | bool | str
        unit = None
        if "x" in m.fields:
            spec = self.profile.channels().get(channel)
            boolean = spec is not None and spec.dtype == "bool"
            value = m.text("x") == "true" if boolean else m.text("x")
        else:
            value, unit = m.number("v"), m.text("u")
        return self.sample(
            channel, value, m.time("t"), unit=unit, quality=quality, seq=seq, publish=publish
        )

    async def _alarm(self, m: Message) -> None:
        status = {"acked": "acknowledged"}.get(m.text("st"), m.text("st"))
        await self.report_alarm_status(
            m.text("id"),
            m.text("code"),
            status,
            m.time("t"),
            user=m.get("user"),
            severity=AlarmSeverity(m.text("sev")),
            message=m.text("msg"),
            vendor_data={"device_seq": m.seq},
        )

    async def _result(self, m: Message) -> None:
        await self.report_run_result(
            m.text("run"),
            m.text("outcome"),
            time=m.time("stopped"),
            started=m.time("started"),
            stopped=m.time("stopped"),
            pause=timedelta(seconds=m.number("pause") if "pause" in m.fields else 0.0),
            properties=quantities(m, "r."),
            vendor_data={"device_seq": m.seq},
        )

    async def _read(self, channel: str) -> Sample:
        reply = await self.request("GET", {"ch": channel}, operation=f"read {channel}")
        return self._sample(reply, publish=False)

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        fields = {"prog": template.name, "run": run.device_program_run_id}
        if run.supervisory_job_id:
            fields["job"] = run.supervisory_job_id
        fields |= params(parameters)
        await self.request_applied("START", fields, operation=f"start_program {template.name}")

    async def _send_state_command(self, command: StateCommand) -> None:
        vendor = self.protocol.commands[command]
        await self.request_applied("CMD", {"c": vendor}, operation=str(command))

    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        await self.request_applied(
            "ACK",
            {"alarm": alarm.alarm_id, "user": user},
            operation=f"acknowledge {alarm.alarm_id}",
        )

    async def _command(self, name: str, parameters: dict[str, PropertyValue]) -> CommandResult:
        reply = await self.request("X", {"c": name} | params(parameters), operation=name)
        return self.command_result(
            name, data=reply_data(reply), command_id=f"{self.device_id}-x{reply.seq}"
        )

    async def _answer_prompt(self, prompt: OperatorPrompt, answer: str, user: str) -> None:
        await self.request_applied(
            "ANSWER",
            {"prompt": prompt.prompt_id, "user": user, "a": answer},
            operation=f"answer_prompt {prompt.prompt_id}",
        )
