"""`ProdigyAdapter`: the CliniMACS Prodigy through cellauto's serial protocol profile
(schemas/protocols/prodigy.md), over `cellauto.transport` only.

A `ProdigyLink` carries requests and replies; its event frames go to an `EventSequencer`, which
applies them in event-seq order. A gap in event seqs (a corrupt or lost frame, a pulled cable), a
reconnect or a PING reporting a newer event is filled from the device's log with
`LOG from=<first missing>`; what the log no longer holds is recorded as one lost range. A command
returns once the events the device sent before its reply are applied.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import ClassVar

from cellauto.adapter import (
    CAPTURE,
    CONNECTION,
    HEARTBEAT,
    TIMEOUT,
    Conformance,
    ConnectionEvent,
    EventSequencer,
    Options,
    ReadBack,
    Values,
    host_port,
    integer,
    number,
    reconnect_policy,
)
from cellauto.driver import Device, OperatorPrompt, TimeSource
from cellauto.errors import DeviceError, ProtocolError
from cellauto.registry import DeviceUrl
from cellauto.schema import (
    Alarm,
    AlarmSeverity,
    CommandResult,
    DeviceInfo,
    DeviceProfile,
    EventKind,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Quality,
    Sample,
)
from cellauto.state import StateCommand
from cellauto.transport import (
    FrameTransport,
    Heartbeat,
    ReplayTransport,
    SerialConnector,
    StreamTransport,
    TcpConnector,
)

from .codec import SEQ_MAX, Message, PayloadError, make_framer
from .link import PROTOCOL, ProdigyLink, params, quantities, reply_data

__all__ = ["ProdigyAdapter"]

BAUDRATE = integer("baudrate", 115200, "serial line speed", minimum=1)
REQUEST_TIMEOUT = number("request_timeout", 2.0, "s per request attempt", minimum=0.001)
RETRIES = integer("retries", 3, "resends of one request")


class ProdigyAdapter(Device):
    """Miltenyi CliniMACS Prodigy (cellauto's own serial protocol; see the protocol profile).

    URL options: those of `cellauto.adapter.CONNECTION` (``timeout``, ``heartbeat`` between
    PINGs, ``capture``, ``reconnect_attempts``, ``reconnect_time``), ``baudrate`` (serial,
    115200), ``request_timeout`` (s per attempt, 2), ``retries`` (resends of one request, 3).
    ``prodigy+replay://<capture>`` replays a capture.
    """

    kind = "prodigy"
    transports = ("serial", "tcp", "replay")
    conformance: ClassVar[Conformance] = Conformance(
        program="TCT",
        test_options={"request_timeout": "0.3", "heartbeat": "0.2"},
        values_recoverable=True,
        outage_hours=None,
    )

    options: ClassVar[Options] = CONNECTION | Options(BAUDRATE, REQUEST_TIMEOUT, RETRIES)

    def __init__(
        self,
        device_id: str,
        profile: DeviceProfile,
        url: DeviceUrl | None = None,
        *,
        time: TimeSource | None = None,
        transport: FrameTransport | None = None,
    ) -> None:
        values = self.options.parse(device_id, url.options if url is not None else {})
        super().__init__(device_id, profile, timeout=values[TIMEOUT], time=time)
        self.request_timeout = values[REQUEST_TIMEOUT]
        self.retries = values[RETRIES]
        self.sequencer = EventSequencer(
            device_id, self._apply, self._read_log, self.report_lost_events, wrap=SEQ_MAX
        )
        self.link = ProdigyLink(
            device_id,
            transport or self._make_transport(url, values),
            lambda m: self.sequencer.offer(m.seq, m),
            request_timeout=self.request_timeout,
            retries=self.retries,
        )
        self._request = self.link.request

    @property
    def framing_errors(self) -> int:
        """Incoming frames dropped as unreadable (bad checksum, half frames, bad grammar)."""
        return self.link.framing_errors

    def _make_transport(self, url: DeviceUrl | None, values: Values) -> FrameTransport:
        if url is None:
            raise DeviceError(self.device_id, "connect", "give a device URL or a transport")
        connector: SerialConnector | TcpConnector
        if url.transport == "serial":
            connector = SerialConnector(url.address, {"baudrate": values[BAUDRATE]})
        elif url.transport == "replay":
            return ReplayTransport(url.address, device=self.device_id)
        elif url.transport == "tcp":
            connector = TcpConnector(*host_port(self.device_id, url.address))
        else:
            raise DeviceError(
                self.device_id, "connect", f"no transport {url.transport!r}; use serial or tcp"
            )
        heartbeat = values[HEARTBEAT]
        return StreamTransport(
            connector,
            make_framer(),
            device=self.device_id,
            reconnect=reconnect_policy(values, initial=0.05, max_delay=1.0, seed=0),
            on_reconnect=self._on_reconnect,
            heartbeat=Heartbeat(
                interval=heartbeat,
                probe=self._ping,
                timeout=self.request_timeout * (self.retries + 1) + 1.0,
            )
            if heartbeat > 0
            else None,
            on_event=self._on_connection,
            capture=Path(values[CAPTURE]) if values.given(CAPTURE) else None,
        )

    def _on_connection(self, event: ConnectionEvent) -> None:
        self.report_connection(event.state, event.detail, event.attempts)

    async def _connect(self) -> DeviceInfo:
        await self.link.open()
        hello = await self._request("HELLO", {}, operation="connect")
        subscribed = await self._request("SUB", {"ch": "*"}, operation="connect")
        self.sequencer.start_at(subscribed.integer("last"))  # every later event reaches us
        await self._sync_state("connect")
        return DeviceInfo(
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

    async def _close(self) -> None:
        await self.sequencer.close()
        await self.link.close()

    async def _on_reconnect(self) -> None:
        """A new link: a new session (HELLO), re-subscribe, then read back what was missed."""
        await self._request("HELLO", {}, operation="reconnect")
        await self._request("SUB", {"ch": "*"}, operation="reconnect")
        await self._sync_state("reconnect")
        await self.sequencer.read_back()

    async def _sync_state(self, operation: str) -> None:
        reply = await self._request("STATE", {}, operation=operation)
        state = PROTOCOL.state(reply.text("state"))
        if state is None:
            raise ProtocolError(self.device_id, operation, f"unknown state {reply.text('state')}")
        await self.report_state(state)

    async def _ping(self) -> None:
        if self.link.busy:
            return  # a request in flight proves the line as well
        reply = await self._request("PING", {}, operation="heartbeat", retries=0)
        last = reply.get("last")
        if last is not None and last.isdigit():
            self.sequencer.behind(int(last))

    async def _read_log(self, first: int) -> ReadBack[Message]:
        """``LOG from=first``: the device sends the logged events as `L` frames (offered to the
        sequencer by the reader), then a reply whose ``lost`` counts what it no longer held."""
        reply = await self._request("LOG", {"from": str(first)}, operation="log read-back")
        lost = int(reply.get("lost") or "0")
        return ReadBack(lost=(first, (first + lost - 2) % SEQ_MAX + 1) if lost else None)

    async def _apply(self, seq: int, m: Message) -> None:
        verb = m.verb
        if verb == "SAMPLE":
            self.report_sample(self._sample(m))
        elif verb == "STATE":
            state = PROTOCOL.state(m.text("state"))
            if state is None:
                raise PayloadError(f"STATE: unknown vendor state {m.text('state')!r}")
            await self.report_state(state)
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
        if "x" in m.fields:
            text = m.text("x")
            spec = self.profile.channels().get(channel)
            value: float | bool | str = text
            if spec is not None and spec.dtype == "bool":
                value = text == "true"
            return self.sample(
                channel, value, m.time("t"), quality=quality, seq=seq, publish=publish
            )
        return self.sample(
            channel,
            m.number("v"),
            m.time("t"),
            unit=m.text("u"),
            quality=quality,
            seq=seq,
            publish=publish,
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
        reply = await self._request("GET", {"ch": channel}, operation=f"read {channel}")
        return self._sample(reply, publish=False)

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        fields = {"prog": template.name, "run": run.device_program_run_id}
        if run.supervisory_job_id:
            fields["job"] = run.supervisory_job_id
        fields |= params(parameters)
        await self._request("START", fields, operation=f"start_program {template.name}")
        await self.sequencer.caught_up()

    async def _send_state_command(self, command: StateCommand) -> None:
        # The device sends the command's transitions before its reply, on the same ordered
        # stream; some may wait in the sequencer behind a gap. The reply's state is not adopted.
        await self._request("CMD", {"c": PROTOCOL.commands[command]}, operation=str(command))
        await self.sequencer.caught_up()

    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        await self._request(
            "ACK",
            {"alarm": alarm.alarm_id, "user": user},
            operation=f"acknowledge {alarm.alarm_id}",
        )
        await self.sequencer.caught_up()

    async def _command(self, name: str, parameters: dict[str, PropertyValue]) -> CommandResult:
        reply = await self._request("X", {"c": name} | params(parameters), operation=name)
        return self.command_result(
            name, data=reply_data(reply), command_id=f"{self.device_id}-x{reply.seq}"
        )

    async def _answer_prompt(self, prompt: OperatorPrompt, answer: str, user: str) -> None:
        await self._request(
            "ANSWER",
            {"prompt": prompt.prompt_id, "user": user, "a": answer},
            operation=f"answer_prompt {prompt.prompt_id}",
        )
        await self.sequencer.caught_up()
