"""`CocoonAdapter`: the Lonza Cocoon through cellauto's Cocoon OPC UA protocol profile.

Every channel is one monitored variable; every device event (state, step, prompt, alarm,
result) is one OPC UA event carrying a gapless `Seq`, applied through an `EventSequencer` whose
read-back is ``ReadEventLog``; channel values missed while disconnected are recorded as a gap
event. Commands return once the sequencer has applied the events the device published for them,
so ``await cocoon.hold()`` leaves ``cocoon.state`` at Held.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

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
    number,
    reconnect_policy,
)
from cellauto.driver import Device, OperatorPrompt, TimeSource
from cellauto.errors import CommandRejected, DeviceError, OpcUaStatusError
from cellauto.registry import DeviceUrl
from cellauto.schema import (
    Alarm,
    CommandResult,
    DeviceInfo,
    DeviceProfile,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Quantity,
    Sample,
)
from cellauto.state import StateCommand
from cellauto.transport.opcua import (
    DataChange,
    OpcUaApi,
    OpcUaTransport,
    SubscriptionApi,
    endpoint,
)
from cellauto.transport.opcua_capture import Capture
from cellauto.transport.opcua_replay import OpcUaReplay

from .nodes import (
    IDENTIFICATION,
    NAMESPACE,
    NAMESPACE_ARRAY,
    PROTOCOL,
    SETPOINTS,
    Paths,
    aware,
    jsonable,
    quality,
    result_property,
    severity,
)

_log = logging.getLogger("cellauto_adapters.cocoon")


PERIOD = number("period", 0.02, "s, publishing interval of the value subscription", minimum=0.001)


class CocoonAdapter(Device):
    """A Lonza Cocoon (or its simulator) at ``cocoon+opcua://host:port``.

    URL options: those of `cellauto.adapter.CONNECTION` (``timeout``, ``heartbeat``,
    ``capture``, ``reconnect_attempts``, ``reconnect_time``) and ``period`` (s, publishing
    interval of the value subscription, default 0.02). A user name in the URL
    (``cocoon+opcua://olga@host:port``) logs in with the password from
    `cellauto.secrets.credentials` (environment, credentials file, URL); without one the
    session is anonymous, which a Cocoon may allow only to read. ``cocoon+replay://<capture>``
    replays a capture.
    """

    kind: ClassVar[str] = "cocoon"
    transports: ClassVar[tuple[str, ...]] = ("opcua", "replay")
    conformance: ClassVar[Conformance] = Conformance(
        program="CAR-T",
        test_options={"timeout": "3", "heartbeat": "1"},
        not_applicable={
            "alarm:cassette_not_detected": "the simulator raises it only in a run past the "
            "cassette installation step, so it cannot be raised on an idle device",
            "alarm:reagent_missing": "the simulator raises it only in a run past the reagent "
            "loading step, so it cannot be raised on an idle device",
        },
    )

    options: ClassVar[Options] = CONNECTION | Options(PERIOD)
    sample_numbering: ClassVar[Literal["arrival", "period"]] = "period"

    def __init__(
        self,
        device_id: str,
        profile: DeviceProfile,
        url: DeviceUrl,
        *,
        time: TimeSource | None = None,
        transport: OpcUaApi | None = None,
    ) -> None:
        values = self.options.parse(device_id, url.options)
        super().__init__(device_id, profile, timeout=values[TIMEOUT], time=time)
        self.period = values[PERIOD]
        if transport is None and url.transport == "replay":
            transport = OpcUaReplay(url.address, device=device_id)
        if transport is None:
            login = endpoint(device_id, url.address)
            transport = OpcUaTransport(
                login.url,
                device=device_id,
                timeout=self.timeout,
                heartbeat=values[HEARTBEAT] or 3600.0,
                backoff=reconnect_policy(values),
                on_event=self._on_connection,
                on_reconnect=self._on_reconnect,
                capture=Capture(values[CAPTURE]) if values.given(CAPTURE) else None,
                credentials=login.credentials,
            )
        self._transport: OpcUaApi = transport
        self._paths = Paths(2)  # until connect reads the namespace index
        self._channel_of: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.sequencer = EventSequencer(
            device_id, self._apply, self._read_log, self.report_lost_events
        )
        self._latest: dict[str, datetime] = {}
        self._last_value: dict[str, Any] = {}
        self._step: tuple[str | None, int | None] = (None, None)
        self._progress = (0.0, 0.0)
        self._closing = False

    # -- connection ----------------------------------------------------------------------------

    async def _connect(self) -> DeviceInfo:
        t = self._transport
        await t.open()
        namespaces = await t.read(NAMESPACE_ARRAY)
        if NAMESPACE not in namespaces:
            raise DeviceError(
                self.device_id,
                "connect",
                f"the server has no {NAMESPACE} namespace",
                hint="is this a Cocoon speaking cellauto's Cocoon protocol profile?",
            )
        paths = self._paths = Paths(namespaces.index(NAMESPACE))
        self._channel_of = {paths.channel(c): c for c in self.profile.channels()}
        events = t.subscribe_events("", paths.event_types())
        await events.start()  # before reading EventSeq, so no event falls between the two
        identity = await t.read_many([paths.identification(n) for n in IDENTIFICATION])
        state, seq, alarms = await t.read_many(
            [paths.status(n) for n in ("State", "EventSeq", "ActiveAlarms")]
        )
        self.sequencer.start_at(int(seq))
        await self.report_state(PROTOCOL.states[state])
        for record in json.loads(alarms):
            await self._adopt_alarm(record)
        progress_paths = [paths.status("Progress"), paths.status("RemainingTime")]
        values = t.subscribe([*self._channel_of, *progress_paths], self.period)
        await values.start()
        self._tasks = [
            asyncio.create_task(self._pump_events(events), name=f"{self.device_id} events"),
            asyncio.create_task(self._pump_values(values), name=f"{self.device_id} values"),
        ]
        manufacturer, model, serial, software, revision = identity
        return DeviceInfo(
            manufacturer=manufacturer,
            model=model,
            serial_number=serial,
            software_revision=software,
            device_revision=revision,
            vendor_data={"namespace": NAMESPACE, "event_seq": int(seq)},
        )

    async def _close(self) -> None:
        self._closing = True
        try:
            await self._transport.close()
        finally:
            await self.sequencer.close()
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def _on_connection(self, event: ConnectionEvent) -> None:
        # the `connected` event after an outage carries the gap: channel values the device
        # published meanwhile are not recoverable over OPC UA
        self.report_connection(event.state, event.detail, event.attempts)

    async def _on_reconnect(self) -> None:
        await self.sequencer.read_back()

    # -- data ----------------------------------------------------------------------------------

    async def _read(self, channel: str) -> Sample:
        data = await self._transport.read_data(self._paths.channel(channel))
        return self._sample(channel, data, publish=False)

    async def _pump_values(self, subscription: SubscriptionApi[DataChange]) -> None:
        progress, remaining = self._paths.status("Progress"), self._paths.status("RemainingTime")
        async for change in subscription:
            channel = self._channel_of.get(change.path)
            if channel is not None:
                try:
                    self._on_value(channel, change)
                except (TypeError, ValueError):
                    _log.exception("%s: unusable value %s", self.device_id, change)
            elif change.path in (progress, remaining):
                done, left = self._progress
                self._progress = (
                    (float(change.value), left)
                    if change.path == progress
                    else (done, float(change.value))
                )
                await self.report_progress(
                    progress=self._progress[0],
                    remaining=timedelta(seconds=self._progress[1]),
                    step_name=self._step[0],
                    step_number=self._step[1],
                )

    def _on_value(self, channel: str, change: DataChange) -> None:
        stamp = aware(change.source_timestamp)
        latest = self._latest.get(channel)
        # a re-subscription repeats the value last delivered (same stamp and value); an
        # on-change channel may publish several values within one instant, all delivered;
        # only delivered values count (a read must not hide values still on their way)
        if (
            stamp is not None
            and latest is not None
            and (
                stamp < latest
                or (stamp == latest and self._last_value.get(channel) == change.value)
            )
        ):
            return
        self._last_value[channel] = change.value
        if stamp is not None:
            self._latest[channel] = max(stamp, latest or stamp)
        self.report_sample(self._sample(channel, change))

    def _sample(self, channel: str, data: DataChange, *, publish: bool = True) -> Sample:
        descriptor = self.profile.channel(channel)
        stamp = aware(data.source_timestamp) or self.time.now()
        value = data.value
        if descriptor.dtype == "float":
            value = math.nan if value is None else float(value)  # a Bad status carries no value
        elif descriptor.dtype == "int":
            value = int(value)
        return self.sample(channel, value, stamp, quality=quality(data.status), publish=publish)

    # -- events --------------------------------------------------------------------------------

    async def _pump_events(self, subscription: SubscriptionApi[dict[str, Any]]) -> None:
        async for fields in subscription:
            try:
                await self.sequencer.offer(int(fields["Seq"]), fields)
            except (KeyError, TypeError, ValueError):
                _log.exception("%s: event without a Seq: %s", self.device_id, fields)

    async def _read_log(self, first: int) -> ReadBack[Mapping[str, Any]]:
        """``ReadEventLog(first)``: the logged events, and the gap line's range if any."""
        text, _last = await self._call("read event log", "ReadEventLog", first)
        events, lost = [], None
        for line in str(text).splitlines():
            entry = json.loads(line)
            if "gap" in entry:
                lost = (int(entry["gap"]["from"]), int(entry["gap"]["to"]))
            else:
                events.append((int(entry["Seq"]), entry | {"Time": aware(entry["Time"])}))
        return ReadBack(events, lost)

    async def _apply(self, seq: int, fields: Mapping[str, Any]) -> None:
        kind = fields["Kind"]
        time = aware(fields["Time"]) or self.time.now()
        vendor: dict[str, JsonValue] = {"seq": seq}
        if kind == "state":
            await self.report_state(PROTOCOL.states[fields["State"]])
        elif kind == "step":
            self._step = (fields["StepName"], int(fields["StepNumber"]))
            self._progress = (float(fields["Progress"]), float(fields["RemainingTime"]))
            await self.report_progress(
                progress=self._progress[0],
                remaining=timedelta(seconds=self._progress[1]),
                step_name=self._step[0],
                step_number=self._step[1],
            )
        elif kind == "prompt":
            self._report_prompt(fields, time)
        elif kind == "alarm":
            await self._report_alarm(fields, time, vendor)
        elif kind == "result":
            await self.report_run_result(
                fields["RunId"],
                fields["Outcome"],
                time=time,
                started=aware(fields["Started"]),
                stopped=aware(fields["Stopped"]) or time,
                pause=timedelta(seconds=float(fields["PauseTime"])),
                properties={
                    k: result_property(v) for k, v in json.loads(fields["Properties"]).items()
                },
                vendor_data=vendor,
            )

    def _report_prompt(self, fields: Mapping[str, Any], time: datetime) -> None:
        if fields["Status"] == "answered":
            self.report_prompt_answered(fields["PromptId"], fields["Answer"], fields["User"])
        else:
            prompt = OperatorPrompt(fields["PromptId"], self.device_id, fields["Text"], time)
            self.report_prompt(prompt)

    async def _report_alarm(
        self, fields: Mapping[str, Any], time: datetime, vendor: dict[str, JsonValue]
    ) -> None:
        await self.report_alarm_status(
            fields["AlarmId"],
            fields["Code"],
            fields["Status"],
            time,
            user=fields.get("User"),
            source=fields.get("SourceUnit") or None,
            severity=severity(int(fields.get("Severity", 500))),
            message=str(fields.get("Message", fields["Code"])),
            vendor_data=vendor | {"severity": int(fields.get("Severity", 0))},
        )

    async def _adopt_alarm(self, record: Mapping[str, Any]) -> None:
        """An alarm raised before this connection, from `Status/ActiveAlarms`."""
        now = self.time.now()
        alarm_id, code = record["AlarmId"], record["Code"]
        await self.report_alarm_status(alarm_id, code, "raised", now)
        if record["Acknowledged"]:
            await self.report_alarm_status(alarm_id, code, "acknowledged", now, user="unknown")
        if not record["Active"]:
            await self.report_alarm_status(alarm_id, code, "cleared", now)

    # -- commands ------------------------------------------------------------------------------

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        operation = f"start_program {template.name}"
        await self._call(
            operation, "LoadProtocol", template.model_dump_json(), template.content_hash
        )
        _estimate, seq = await self._call(
            operation,
            "Start",
            run.device_program_run_id,
            run.supervisory_job_id or "",
            "",
            json.dumps({k: jsonable(v) for k, v in parameters.items()}),
        )
        await self.sequencer.applied(int(seq))

    async def _send_state_command(self, command: StateCommand) -> None:
        _state, seq = await self._call(str(command), PROTOCOL.commands[command])
        await self.sequencer.applied(int(seq))

    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        seq = await self._call(
            f"acknowledge {alarm.alarm_id}", "AcknowledgeAlarm", alarm.alarm_id, user
        )
        await self.sequencer.applied(int(seq))

    async def _answer_prompt(self, prompt: OperatorPrompt, answer: str, user: str) -> None:
        await self._acknowledge_prompt(
            f"answer_prompt {prompt.prompt_id}", prompt.prompt_id, answer, user
        )

    async def _acknowledge_prompt(
        self, operation: str, prompt_id: str, answer: str, user: str
    ) -> None:
        seq = await self._call(operation, "AcknowledgePrompt", prompt_id, user, answer)
        await self.sequencer.applied(int(seq))

    async def _command(self, name: str, parameters: dict[str, PropertyValue]) -> CommandResult:
        data: dict[str, JsonValue] = {}
        message = ""
        accepted = True
        match name:
            case "load_protocol":
                template = self._template(str(parameters["protocol"]))
                await self._call(
                    name, "LoadProtocol", template.model_dump_json(), template.content_hash
                )
                data = {"protocol": template.name, "content_hash": template.content_hash}
            case "validate_protocol":
                problems = json.loads(await self._call(name, "ValidateProtocol"))
                accepted, message, data = not problems, "; ".join(problems), {"problems": problems}
            case "check_cassette":
                integrity = await self._call(name, "CheckCassette")
                accepted, data = integrity == "pass", {"integrity": integrity}
            case "acknowledge_prompt":
                await self._acknowledge_prompt(
                    name,
                    str(parameters["prompt_id"]),
                    str(parameters.get("answer", "")),
                    str(parameters.get("user", "")),
                )
            case "take_sample":
                volume = parameters["volume"]
                assert isinstance(volume, Quantity)
                data = {"sample_id": await self._call(name, "TakeSample", volume.value)}
            case "release_cassette":
                await self._call(name, "ReleaseCassette")
            case "set_setpoints":
                for parameter, value in parameters.items():
                    assert isinstance(value, Quantity)
                    await self._transport.write(
                        self._paths.channel(SETPOINTS[parameter]), value.value
                    )
                data = {SETPOINTS[k]: jsonable(v) for k, v in parameters.items()}
            case _:
                return await super()._command(name, parameters)
        return self.command_result(name, data=data, accepted=accepted, message=message)

    async def _call(self, operation: str, method: str, *args: Any) -> Any:
        """Call a `Cocoon` method; a Bad status becomes CommandRejected naming `operation`."""
        try:
            return await self._transport.call(self._paths.root, self._paths.method(method), *args)
        except OpcUaStatusError as exc:
            raise CommandRejected(
                self.device_id,
                operation,
                f"the device refused {method} ({exc.status})",
                hint=PROTOCOL.errors.get(exc.status, ("", ""))[0],
            ) from exc
