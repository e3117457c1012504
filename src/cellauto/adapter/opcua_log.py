"""The adapter base of the OPC UA event-log family: a device on an OPC UA server whose events
are numbered (`Seq` from 1, no gaps), emitted as custom event types with a `Kind` field,
mirrored in status variables and read back with a back-fill method (the simulator side is
`cellauto.sim.families.opcua_log.OpcUaEventLogDevice`; the Cocoon is the worked example).

The address space follows the family's layout below the device's root object ``<Root>``, all
in the device's namespace (its index read from the server's NamespaceArray):
``<Root>/Identification/<name>`` (`identification`); ``<Root>/Status/`` with ``State`` (vendor
state), ``EventSeq`` (newest Seq), ``ActiveAlarms`` (JSON list of ``{AlarmId, Code, Active,
Acknowledged}``), ``Progress`` (0..1) and ``RemainingTime`` (s); the channel ``unit.variable``
at ``<Root>/<Unit>/<Variable>`` (snake case capitalised, `acronyms` as written); and methods
on ``<Root>``: the state commands (named by the protocol's vocabulary; they return the new
state and the Seq of their last event), ``AcknowledgeAlarm(AlarmId, User) -> Seq``,
``AcknowledgePrompt(PromptId, User, Answer) -> Seq`` and ``ReadEventLog(FromSeq) -> (JSON
Lines, LastSeq)``, whose first line is ``{"gap": {"from", "to"}}`` when events are gone.

Events of kind ``state`` (State), ``prompt`` (PromptId, Text, Status open/answered, User,
Answer), ``alarm`` (AlarmId, Code, Status raised/acknowledged/cleared, SourceUnit, User,
Severity, Message) and ``result`` (RunId, Outcome, Started, Stopped, PauseTime, Properties as
JSON) are applied here; a device applies its other kinds in `_device_event`. A device
subclasses `OpcUaEventLogAdapter` with its `kind`, `namespace`, `root`, `event_types` and
`protocol`, and writes its own program start and commands with `call`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import JsonValue

from cellauto.adapter.options import (
    CAPTURE,
    CONNECTION,
    HEARTBEAT,
    TIMEOUT,
    Options,
    number,
    reconnect_policy,
)
from cellauto.adapter.sequencer import EventSequencer, ReadBack
from cellauto.driver import Device, OperatorPrompt, TimeSource
from cellauto.errors import CommandRejected, DeviceError, OpcUaStatusError
from cellauto.protocols import ProtocolTables
from cellauto.registry import DeviceUrl
from cellauto.schema import (
    Alarm,
    AlarmSeverity,
    DeviceInfo,
    DeviceProfile,
    PropertyValue,
    Quality,
    Quantity,
    Sample,
)
from cellauto.state import StateCommand
from cellauto.transport.base import ConnectionEvent
from cellauto.transport.opcua import (
    DataChange,
    OpcUaApi,
    OpcUaTransport,
    SubscriptionApi,
    endpoint,
)
from cellauto.transport.opcua_capture import Capture
from cellauto.transport.opcua_replay import OpcUaReplay

__all__ = [
    "IDENTIFICATION",
    "PERIOD",
    "NodePaths",
    "OpcUaEventLogAdapter",
    "aware",
    "jsonable",
    "quality",
    "result_property",
    "severity",
]

_log = logging.getLogger("cellauto.adapter.opcua_log")

PERIOD = number("period", 0.02, "s, publishing interval of the value subscription", minimum=0.001)
NAMESPACE_ARRAY = "i=2255"
IDENTIFICATION = ("Manufacturer", "Model", "SerialNumber", "SoftwareRevision", "DeviceRevision")
"""The identification variables, in `DeviceInfo` order."""


class NodePaths:
    """Browse paths in a device's namespace, once its index `ns` is known."""

    def __init__(self, ns: int, root: str, acronyms: Mapping[str, str] | None = None) -> None:
        self.ns = ns
        self.root = f"{ns}:{root}"
        self._acronyms = acronyms or {}

    def channel(self, channel: str) -> str:
        """`chamber.ph` -> `<ns>:<Root>/<ns>:Chamber/<ns>:pH` (with ``ph`` an acronym)."""
        unit, variable = channel.split(".")
        return f"{self.root}/{self.ns}:{self.node_name(unit)}/{self.ns}:{self.node_name(variable)}"

    def node_name(self, snake: str) -> str:
        """`cold_zone` -> `ColdZone`; a word in the acronyms is written as they say."""
        return "".join(self._acronyms.get(word, word.capitalize()) for word in snake.split("_"))

    def status(self, name: str) -> str:
        """A variable of `<Root>/Status`."""
        return f"{self.root}/{self.ns}:Status/{self.ns}:{name}"

    def identification(self, name: str) -> str:
        """A variable of `<Root>/Identification`."""
        return f"{self.root}/{self.ns}:Identification/{self.ns}:{name}"

    def method(self, name: str) -> str:
        """A method of `<Root>` as the transport's `call` names it."""
        return f"{self.ns}:{name}"

    def event_types(self, names: tuple[str, ...]) -> list[str]:
        """Event types in the namespace, as paths below BaseEventType."""
        return [f"{self.ns}:{name}" for name in names]


def severity(opcua: int) -> AlarmSeverity:
    """An OPC UA severity (1..1000) as an alarm severity."""
    if opcua >= 800:
        return AlarmSeverity.CRITICAL
    if opcua >= 600:
        return AlarmSeverity.ERROR
    if opcua >= 300:
        return AlarmSeverity.WARNING
    return AlarmSeverity.INFO


def aware(value: Any) -> datetime | None:
    """An OPC UA DateTime (or ISO 8601 text from the event log) in UTC; None if neither."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def quality(status: str) -> Quality:
    """An OPC UA status name as a sample quality."""
    if status.startswith("Good"):
        return Quality.GOOD
    return Quality.UNCERTAIN if status.startswith("Uncertain") else Quality.BAD


def jsonable(value: PropertyValue) -> JsonValue:
    """A parameter value as the JSON the methods take."""
    return value.model_dump(mode="json") if isinstance(value, Quantity) else value


def result_property(value: Any) -> PropertyValue:
    """A property of the result event's JSON (a quantity is ``{value, unit}``)."""
    if isinstance(value, dict):
        return Quantity(value=float(value["value"]), unit=str(value["unit"]))
    if isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"unsupported result property {value!r}")


class OpcUaEventLogAdapter(Device):
    """A device of the OPC UA event-log family (see the module doc) at
    ``<kind>+opcua://host:port``; ``<kind>+replay://<capture>`` replays a capture.

    URL options: those of `cellauto.adapter.CONNECTION` (``timeout``, ``heartbeat``,
    ``capture``, ``reconnect_attempts``, ``reconnect_time``) and ``period`` (s, publishing
    interval of the value subscription, default 0.02). A user name in the URL logs in with the
    password from `cellauto.secrets.credentials`; without one the session is anonymous.
    """

    transports: ClassVar[tuple[str, ...]] = ("opcua", "replay")
    options: ClassVar[Options] = CONNECTION | Options(PERIOD)
    sample_numbering: ClassVar[Literal["arrival", "period"]] = "period"
    namespace: ClassVar[str]
    """The device's namespace URI."""
    root: ClassVar[str]
    """The browse name of the device's root object below Objects."""
    event_types: ClassVar[tuple[str, ...]]
    """The browse names of the device's event types (subtypes of BaseEventType)."""
    protocol: ClassVar[ProtocolTables]
    """The vendor vocabulary: states, state-command methods, error meanings (`load_protocol`)."""
    acronyms: ClassVar[Mapping[str, str]] = {}
    """Snake-case words written otherwise than capitalised in node names (``{"ph": "pH"}``)."""
    identification: ClassVar[tuple[str, ...]] = IDENTIFICATION

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
        self.transport: OpcUaApi = transport
        self.paths = NodePaths(2, self.root, self.acronyms)  # until connect reads the index
        self.sequencer = EventSequencer(
            device_id, self._apply, self._read_log, self.report_lost_events
        )
        self._channel_of: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._latest: dict[str, datetime] = {}
        self._last_value: dict[str, Any] = {}
        self._step: tuple[str | None, int | None] = (None, None)
        self._progress = (0.0, 0.0)

    # -- connection ----------------------------------------------------------------------------

    async def _connect(self) -> DeviceInfo:
        t = self.transport
        await t.open()
        namespaces = await t.read(NAMESPACE_ARRAY)
        if self.namespace not in namespaces:
            raise DeviceError(
                self.device_id,
                "connect",
                f"the server has no {self.namespace} namespace",
                hint=f"is this a {self.profile.model} speaking cellauto's protocol profile "
                f"schemas/protocols/{self.kind}.md?",
            )
        paths = self.paths = NodePaths(namespaces.index(self.namespace), self.root, self.acronyms)
        self._channel_of = {paths.channel(c): c for c in self.profile.channels()}
        events = t.subscribe_events("", paths.event_types(self.event_types))
        await events.start()  # before reading EventSeq, so no event falls between the two
        identity = await t.read_many([paths.identification(n) for n in self.identification])
        state, seq, alarms = await t.read_many(
            [paths.status(n) for n in ("State", "EventSeq", "ActiveAlarms")]
        )
        self.sequencer.start_at(int(seq))
        await self.report_state(self.protocol.states[state])
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
            vendor_data={"namespace": self.namespace, "event_seq": int(seq)},
        )

    async def _close(self) -> None:
        try:
            await self.transport.close()
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
        data = await self.transport.read_data(self.paths.channel(channel))
        return self._sample(channel, data, publish=False)

    async def _pump_values(self, subscription: SubscriptionApi[DataChange]) -> None:
        progress, remaining = self.paths.status("Progress"), self.paths.status("RemainingTime")
        async for change in subscription:
            channel = self._channel_of.get(change.path)
            if channel is not None:
                try:
                    self._on_value(channel, change)
                except (TypeError, ValueError):
                    _log.exception("%s: unusable value %s", self.device_id, change)
            elif change.path == progress:
                await self.report_step(progress=float(change.value))
            elif change.path == remaining:
                await self.report_step(remaining=float(change.value))

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

    async def report_step(
        self,
        *,
        progress: float | None = None,
        remaining: float | None = None,
        step: tuple[str, int] | None = None,
    ) -> None:
        """Report the run's progress with what changed (`remaining` in s; `step` is its name
        and number); the rest is as last reported."""
        done, left = self._progress
        self._progress = (
            done if progress is None else progress,
            left if remaining is None else remaining,
        )
        self._step = self._step if step is None else step
        await self.report_progress(
            progress=self._progress[0],
            remaining=timedelta(seconds=self._progress[1]),
            step_name=self._step[0],
            step_number=self._step[1],
        )

    # -- events --------------------------------------------------------------------------------

    async def _pump_events(self, subscription: SubscriptionApi[dict[str, Any]]) -> None:
        async for fields in subscription:
            try:
                await self.sequencer.offer(int(fields["Seq"]), fields)
            except (KeyError, TypeError, ValueError):
                _log.exception("%s: event without a Seq: %s", self.device_id, fields)

    async def _read_log(self, first: int) -> ReadBack[Mapping[str, Any]]:
        """``ReadEventLog(first)``: the logged events, and the gap line's range if any."""
        text, _last = await self.call("read event log", "ReadEventLog", first)
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
            await self.report_state(self.protocol.states[fields["State"]])
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
        else:
            await self._device_event(kind, fields, time)

    async def _device_event(self, kind: str, fields: Mapping[str, Any], time: datetime) -> None:
        """An event of a kind only this device has (the Cocoon's ``step``); none by default."""
        _log.info("%s: event %s (%s) not applied", self.device_id, kind, fields)

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

    async def _send_state_command(self, command: StateCommand) -> None:
        _state, seq = await self.call(str(command), self.protocol.commands[command])
        await self.sequencer.applied(int(seq))

    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        seq = await self.call(
            f"acknowledge {alarm.alarm_id}", "AcknowledgeAlarm", alarm.alarm_id, user
        )
        await self.sequencer.applied(int(seq))

    async def _answer_prompt(self, prompt: OperatorPrompt, answer: str, user: str) -> None:
        await self.acknowledge_prompt(
            f"answer_prompt {prompt.prompt_id}", prompt.prompt_id, answer, user
        )

    async def acknowledge_prompt(
        self, operation: str, prompt_id: str, answer: str, user: str
    ) -> None:
        """``AcknowledgePrompt``; returns once the device's answer event has been applied."""
        seq = await self.call(operation, "AcknowledgePrompt", prompt_id, user, answer)
        await self.sequencer.applied(int(seq))

    async def call(self, operation: str, method: str, *args: Any) -> Any:
        """Call a method of the root object; a Bad status becomes CommandRejected naming
        `operation`, with the protocol's meaning of the status as hint."""
        try:
            return await self.transport.call(self.paths.root, self.paths.method(method), *args)
        except OpcUaStatusError as exc:
            raise CommandRejected(
                self.device_id,
                operation,
                f"the device refused {method} ({exc.status})",
                hint=self.protocol.errors.get(exc.status, ("", ""))[0],
            ) from exc
