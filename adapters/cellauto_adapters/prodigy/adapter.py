"""`ProdigyAdapter`: the CliniMACS Prodigy through cellauto's serial protocol profile
(schemas/protocols/prodigy.md), over `cellauto.transport` only.

One reader task owns the incoming stream: replies resolve the one outstanding request (matched
by seq), events go to an `EventSequencer`, which applies them in event-seq order. A gap in event
seqs (a corrupt or lost frame, a pulled cable), a reconnect or a PING reporting a newer event is
filled from the device's log with `LOG from=<first missing>`; what the log no longer holds is
recorded as one lost range. A state command returns once the events the device sent before its
reply are applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

from pydantic import JsonValue

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
    load_protocol,
    number,
    reconnect_policy,
)
from cellauto.driver import Device, OperatorPrompt, TimeSource
from cellauto.errors import (
    CommandRejected,
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    FramingError,
    ProtocolError,
)
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
    Quantity,
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

from .codec import (
    SEQ_MAX,
    Message,
    PayloadError,
    decode,
    encode,
    format_number,
    make_framer,
    next_seq,
    parse_number,
)

__all__ = ["ProdigyAdapter"]

logger = logging.getLogger("cellauto_adapters.prodigy")

PROTOCOL = load_protocol("prodigy")
"""Vendor states, `CMD c=` names and NAK codes (schemas/protocols/prodigy.toml)."""
RETRY_CODES = {"E01": 0.0, "E05": 0.1}  # NAK code -> pause before resending the same seq


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
        self.transport: FrameTransport = transport or self._make_transport(url, values)
        self.sequencer = EventSequencer(
            device_id, self._apply, self._read_log, self.report_lost_events, wrap=SEQ_MAX
        )
        self.framing_errors = 0
        """Incoming frames dropped as unreadable (bad checksum, half frames, bad grammar)."""
        self._seq = 0
        self._lock = asyncio.Lock()
        self._pending: tuple[int, asyncio.Future[Message]] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closing = False

    # --- transport ----------------------------------------------------------------------------

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

    # --- lifecycle ----------------------------------------------------------------------------

    async def _connect(self) -> DeviceInfo:
        await self.transport.open()
        self._reader = asyncio.create_task(self._read_loop(), name=f"{self.device_id} reader")
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
        self._closing = True
        await self.sequencer.close()
        if self._reader is not None:
            self._reader.cancel()
        await self.transport.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

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
        if self._lock.locked():
            return  # a request in flight proves the line as well
        reply = await self._request("PING", {}, operation="heartbeat", retries=0)
        last = reply.get("last")
        if last is not None and last.isdigit():
            self.sequencer.behind(int(last))

    # --- requests -----------------------------------------------------------------------------

    async def _request(
        self,
        verb: str,
        fields: dict[str, str],
        *,
        operation: str,
        retries: int | None = None,
    ) -> Message:
        """Send one request and return its `R` reply; resends the same seq on timeout, E01 and
        E05 (up to `retries` times); any other NAK raises CommandRejected naming the reason."""
        limit = self.retries if retries is None else retries
        async with self._lock:
            self._seq = next_seq(self._seq)
            seq = self._seq
            payload = encode(Message("H", seq, verb, fields))
            attempt = 0
            loop = asyncio.get_running_loop()
            while True:
                future: asyncio.Future[Message] = loop.create_future()
                self._pending = (seq, future)
                try:
                    await self.transport.send(payload, operation=operation)
                    async with asyncio.timeout(self.request_timeout):
                        reply = await future
                except (TimeoutError, ConnectionLost) as exc:
                    attempt += 1
                    if attempt > limit:
                        if isinstance(exc, ConnectionLost):
                            raise
                        raise DeviceTimeout(
                            self.device_id, operation, self.request_timeout * attempt
                        ) from None
                    if isinstance(exc, ConnectionLost):
                        await asyncio.sleep(self.request_timeout / 4)
                    continue
                finally:
                    self._pending = None
                if reply.kind == "R":
                    return reply
                code = reply.get("code") or "?"
                reason = reply.get("reason") or PROTOCOL.errors.get(code, ("refused", ""))[0]
                if code in RETRY_CODES and attempt < limit:
                    attempt += 1
                    await asyncio.sleep(RETRY_CODES[code])
                    continue
                raise CommandRejected(
                    self.device_id,
                    operation,
                    f"device answered NAK {code}: {reason}",
                )

    # --- the reader ---------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while True:
            try:
                payload = await self.transport.receive(operation="receive")
            except FramingError as exc:
                self.framing_errors += 1
                logger.info("%s", exc)
                continue
            except ConnectionLost:
                return
            try:
                message = decode(payload)
            except PayloadError as exc:
                self.framing_errors += 1
                logger.warning("%s: receive: %s", self.device_id, exc.reason)
                continue
            try:
                await self._dispatch(message)
            except (DeviceError, PayloadError, ValueError) as exc:
                logger.warning("%s: cannot apply %s: %s", self.device_id, message, exc)

    async def _dispatch(self, message: Message) -> None:
        if message.kind in ("R", "N"):
            pending = self._pending
            if pending is None:
                return
            seq, future = pending
            if not future.done() and (message.seq == seq or message.seq == 0):
                future.set_result(message)
            return
        if message.kind in ("E", "L"):
            await self.sequencer.offer(message.seq, message)

    async def _read_log(self, first: int) -> ReadBack[Message]:
        """``LOG from=first``: the device sends the logged events as `L` frames (offered to the
        sequencer by the reader), then a reply whose ``lost`` counts what it no longer held."""
        reply = await self._request("LOG", {"from": str(first)}, operation="log read-back")
        lost = int(reply.get("lost") or "0")
        return ReadBack(lost=(first, (first + lost - 2) % SEQ_MAX + 1) if lost else None)

    # --- events -------------------------------------------------------------------------------

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
        properties: dict[str, PropertyValue] = {}
        for name, text in m.prefixed("r.").items():
            if name.endswith(".u"):
                continue
            unit = m.get(f"r.{name}.u")
            number = parse_number(text, f"RESULT r.{name}")
            properties[name] = Quantity(value=number, unit=unit) if unit else number
        await self.report_run_result(
            m.text("run"),
            m.text("outcome"),
            time=m.time("stopped"),
            started=m.time("started"),
            stopped=m.time("stopped"),
            pause=timedelta(seconds=m.number("pause") if "pause" in m.fields else 0.0),
            properties=properties,
            vendor_data={"device_seq": m.seq},
        )

    # --- Device hooks -------------------------------------------------------------------------

    async def _read(self, channel: str) -> Sample:
        reply = await self._request("GET", {"ch": channel}, operation=f"read {channel}")
        return self._sample(reply, publish=False)

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        fields = {"prog": template.name, "run": run.device_program_run_id}
        if run.supervisory_job_id:
            fields["job"] = run.supervisory_job_id
        fields |= _params(parameters)
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
        reply = await self._request("X", {"c": name} | _params(parameters), operation=name)
        data: dict[str, JsonValue] = {}
        for key, text in reply.fields.items():
            if key == "c" or key.endswith(".u"):
                continue
            if text.isascii() and text.isdigit():
                data[key] = int(text)
                continue
            try:
                number = parse_number(text)
            except PayloadError:
                data[key] = text
                continue
            unit = reply.get(f"{key}.u")
            data[key] = {"value": number, "unit": unit} if unit else number
        return self.command_result(name, data=data, command_id=f"{self.device_id}-x{reply.seq}")

    async def _answer_prompt(self, prompt: OperatorPrompt, answer: str, user: str) -> None:
        await self._request(
            "ANSWER",
            {"prompt": prompt.prompt_id, "user": user, "a": answer},
            operation=f"answer_prompt {prompt.prompt_id}",
        )
        await self.sequencer.caught_up()


def _params(parameters: dict[str, PropertyValue]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in parameters.items():
        if isinstance(value, Quantity):
            fields[f"p.{name}"] = format_number(value.value)
            fields[f"p.{name}.u"] = value.unit
        elif isinstance(value, bool):
            fields[f"p.{name}"] = "true" if value else "false"
        elif isinstance(value, int | float):
            fields[f"p.{name}"] = format_number(value)
        else:
            fields[f"p.{name}"] = value
    return fields
