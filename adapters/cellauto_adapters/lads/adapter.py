"""`LadsAdapter`: any OPC UA LADS device (OPC 30500-1) at ``lads+opcua://host:port``.

At connect the adapter browses the server's DI DeviceSet (`cellauto.transport.lads`), picks the
LADS device (``?device=<browse name>`` when the server has several) and builds the device's
profile from what it serves: functional units, functions as channels with units and ranges,
program templates as programs. A subclass with ``browse_profile = False`` keeps the profile it
is given and binds it to the browsed functions by name (that is how a LADS device's own adapter
is a few lines: ``cellqualia+opcua://``).

Live data is one OPC UA subscription: every function's value variable, the FunctionalUnitState
and RunningStateMachine CurrentState of the program unit, the ActiveProgram properties and the
open prompts; alarms are Alarms & Conditions events from the Server object. State commands are
the state machines' methods, programs StartProgram, results the ResultSet's Result objects.
Commands return once the state they lead to is observed. ``lads+replay://<capture>`` replays a
session captured with ``?capture=<file>`` (`cellauto.transport.lads.replay`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import shutil
import tempfile
import weakref
from collections.abc import Awaitable
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from cellauto.adapter import (
    CAPTURE,
    CONNECTION,
    HEARTBEAT,
    TIMEOUT,
    ConnectionEvent,
    Option,
    Options,
    Values,
    number,
    reconnect_policy,
    text,
)
from cellauto.adapter.opcua_log import aware, quality
from cellauto.driver import Device, OperatorPrompt, TimeSource
from cellauto.errors import (
    CommandRejected,
    ConnectionLost,
    DeviceError,
    DeviceOptionError,
    InvalidTransition,
    OpcUaStatusError,
)
from cellauto.lads.mapping import START_PROGRAM, STATE_METHODS, severity_from_opcua
from cellauto.registry import DeviceUrl
from cellauto.schema import (
    Alarm,
    DeviceInfo,
    DeviceProfile,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Quantity,
    Sample,
)
from cellauto.schema.profile import FunctionalUnit
from cellauto.schema.programs import ResultFile
from cellauto.state import (
    ABORTED,
    COMPLETE,
    COMPLETIONS,
    IDLE,
    STOPPED,
    TRANSITIONS,
    FunctionalState,
    RunningState,
    State,
    StateCommand,
)
from cellauto.transport.lads import LadsDeviceView, UnitView, profile_from_view
from cellauto.transport.lads.client import ALARM_CONDITION_TYPE, LadsClient
from cellauto.transport.lads.profile import snake
from cellauto.transport.lads.replay import LadsReplay
from cellauto.transport.opcua import (
    DataChange,
    OpcUaTransport,
    SubscriptionApi,
    endpoint,
    plain,
)
from cellauto.transport.opcua_capture import Capture
from cellauto.transport.opcua_replay import OpcUaReplay
from cellauto.transport.opcua_security import SECURITY_MODES, ClientSecurity

_log = logging.getLogger("cellauto_adapters.lads")
T = TypeVar("T")

PERIOD = number("period", 0.02, "s, publishing interval of the value subscription", minimum=0.001)
DEVICE = text("device", "", "browse name of the LADS device when the server has several")


def _security_mode(name: str) -> str:
    if name not in ("none", *SECURITY_MODES):
        raise ValueError(f"must be none, {' or '.join(SECURITY_MODES)}")
    return name


SECURITY = Option(
    "security",
    _security_mode,
    "none",
    "none, sign or sign_encrypt (Basic256Sha256 with cellauto's client certificate)",
)
SERVER_CERT = text(
    "server_cert",
    "",
    "the server's certificate file (DER or PEM) a secure connection trusts; "
    "else the one pinned at the first secure connection",
)


_ACTIVE = ("DeviceProgramRunId", "CurrentStepNumber")
_UNACCEPTED = {
    "BadInvalidState": "not allowed in the device's state",
    "BadUserAccessDenied": "the server refused the user (give a user with the role it needs)",
    "BadInvalidArgument": "the device refused the arguments",
}


class LadsAdapter(Device):
    """A LADS device (see the module doc). URL options: `cellauto.adapter.CONNECTION`,
    ``period``, ``device``, ``security`` and ``server_cert``; a user name in the URL
    (``lads+opcua://olga@host:port``) logs in with the password from
    `cellauto.secrets.credentials` (environment, credentials file, URL)."""

    kind: ClassVar[str] = "lads"
    transports: ClassVar[tuple[str, ...]] = ("opcua", "replay")
    options: ClassVar[Options] = CONNECTION | Options(PERIOD, DEVICE, SECURITY, SERVER_CERT)
    browse_profile: ClassVar[bool] = True
    """Build the profile by browsing (True), or keep the given one and bind it (False)."""

    @classmethod
    def placeholder_profile(cls) -> DeviceProfile:
        """What the device is known as before it is browsed (replaced at connect)."""
        return DeviceProfile(
            device=cls.kind,
            profile_version="0.0.0",
            manufacturer="unknown",
            model="LADS device (not browsed yet)",
            description="A LADS device; its profile is built by browsing at connect.",
            protocol="docs/lads.md",
            transports=["opcua"],
            functional_units=[FunctionalUnit(name="device", kind="lads_functional_unit")],
        )

    def __init__(
        self,
        device_id: str,
        profile: DeviceProfile,
        url: DeviceUrl,
        *,
        time: TimeSource | None = None,
    ) -> None:
        values = self.options.parse(device_id, url.options)
        super().__init__(device_id, profile, timeout=values[TIMEOUT], time=time)
        self.period = values[PERIOD]
        self.device_name = values[DEVICE]
        self._transport: OpcUaTransport | OpcUaReplay
        self._lads: LadsClient
        if url.transport == "replay":
            self._transport = OpcUaReplay(url.address, device=device_id)
            self._lads = LadsReplay(self._transport, url.address)
        else:
            self._transport = self._opcua(url, values)
            self._lads = LadsClient(self._transport)
        self.view: LadsDeviceView | None = None
        self._unit: UnitView | None = None
        self._channels: dict[str, str] = {}  # value NodeId -> channel
        self._enums: dict[str, list[str]] = {}  # channel -> EnumStrings
        self._states: dict[str, str] = {}  # CurrentState NodeId -> "functional"/"running"
        self._functional = ""
        self._running = ""
        self._early: list[tuple[str, datetime | None]] = []
        self._changed = asyncio.Condition()
        self._active: dict[str, str] = {}  # NodeId -> ActiveProgram property
        self._active_values: dict[str, Any] = {}
        self._names: list[str] = []
        self._numbers: list[int] = []
        self._server_run: str | None = None
        self._fetching: asyncio.Task[None] | None = None
        self._files: Path | None = None
        self._prompt_var: str | None = None
        self._answers: dict[str, tuple[str, str]] = {}
        self._conditions: dict[str, tuple[str, bytes]] = {}  # alarm id -> (ConditionId, EventId)
        self._seen: set[str] = set()
        self._acker: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    def _opcua(self, url: DeviceUrl, values: Values) -> OpcUaTransport:
        """The OPC UA connection the URL names (a user name in it logs in)."""
        login = endpoint(self.device_id, url.address)
        return OpcUaTransport(
            login.url,
            device=self.device_id,
            timeout=self.timeout,
            heartbeat=values[HEARTBEAT] or 3600.0,
            backoff=reconnect_policy(values),
            on_event=self._on_connection,
            on_reconnect=self._on_reconnect,
            capture=Capture(values[CAPTURE]) if values.given(CAPTURE) else None,
            credentials=login.credentials,
            security=self._security(values),
        )

    def _security(self, values: Values) -> ClientSecurity | None:
        """The secure channel the URL names, or None (``server_cert`` without ``security`` is
        an error: it would verify nothing)."""
        server_cert = Path(values[SERVER_CERT]).expanduser() if values[SERVER_CERT] else None
        if values[SECURITY] == "none":
            if server_cert is not None:
                raise DeviceOptionError(
                    self.device_id, "server_cert", "needs security=sign or security=sign_encrypt"
                )
            return None
        return ClientSecurity.named(
            values[SECURITY], device=self.device_id, server_cert=server_cert
        )

    # -- connection ----------------------------------------------------------------------------

    async def _connect(self) -> DeviceInfo:
        t = self._transport
        try:
            await t.open()
        except ConnectionLost as exc:
            security = t.security if isinstance(t, OpcUaTransport) else None
            if security is None or "BadCertificateUntrusted" not in str(exc):
                raise
            raise ConnectionLost(
                self.device_id,
                "connect",
                f"the server does not trust cellauto's client certificate {security.certificate}",
                hint="its administrator trusts it (cellauto's gateway: --trust <that file>)",
            ) from exc
        view = self._choose(await self._lads.browse())
        self.view = view
        if self.browse_profile:
            self.profile = profile_from_view(view, self.kind)
        self._bind(view)
        events = t.subscribe_events("", [ALARM_CONDITION_TYPE])
        await events.start()
        paths = [*self._channels, *self._states, *self._active]
        if self._prompt_var is not None:
            paths.append(self._prompt_var)
        await self._read_state()
        values = t.subscribe(paths, self.period)
        await values.start()
        self._tasks = [
            asyncio.create_task(self._pump_values(values), name=f"{self.device_id} values"),
            asyncio.create_task(self._pump_events(events), name=f"{self.device_id} alarms"),
        ]
        ident = view.identification
        return DeviceInfo(
            manufacturer=ident.get("Manufacturer") or self.profile.manufacturer,
            model=ident.get("Model") or self.profile.model,
            serial_number=ident.get("SerialNumber", ""),
            software_revision=ident.get("SoftwareRevision", ""),
            device_revision=ident.get("DeviceRevision", ""),
            hardware_revision=ident.get("HardwareRevision", ""),
            asset_id=ident.get("AssetId", ""),
            vendor_data={"lads_device": view.name, "lads_node": view.node},
        )

    def _choose(self, views: list[LadsDeviceView]) -> LadsDeviceView:
        names = ", ".join(v.name for v in views) or "none"
        if self.device_name:
            found = next((v for v in views if v.name == self.device_name), None)
            if found is None:
                raise DeviceError(
                    self.device_id,
                    "connect",
                    f"the server has no LADS device {self.device_name!r}",
                    hint=f"LADS devices: {names}",
                )
            return found
        if len(views) != 1:
            raise DeviceError(
                self.device_id,
                "connect",
                f"the server has {len(views)} LADS devices",
                hint=f"name one with ?device=<name>; LADS devices: {names}",
            )
        return views[0]

    def _bind(self, view: LadsDeviceView) -> None:
        """Map each profile channel to the value variable of its function."""
        missing = []
        for unit in self.profile.functional_units:
            served = next((u for u in view.units if snake(u.name) == unit.name), None)
            for channel in unit.channels:
                function = (
                    next((f for f in served.functions if snake(f.name) == channel.name), None)
                    if served is not None
                    else None
                )
                if function is None:
                    missing.append(f"{unit.name}.{channel.name}")
                    continue
                name = f"{unit.name}.{channel.name}"
                self._channels[function.value] = name
                self._enums[name] = list(function.choices)
        if missing:
            raise DeviceError(
                self.device_id,
                "connect",
                f"the LADS device {view.name!r} serves no function for "
                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}",
                hint="is this the device the profile describes?",
            )
        program_unit = view.program_unit or (view.units[0] if view.units else None)
        if program_unit is None:
            raise DeviceError(self.device_id, "connect", f"{view.name!r} has no functional unit")
        self._unit = served_unit = program_unit
        self._states = {served_unit.functional_state: "functional"}
        if served_unit.running_state is not None:
            self._states[served_unit.running_state] = "running"
        manager = served_unit.program_manager
        self._active = {v: k for k, v in (manager.active if manager else {}).items()}
        self._prompt_var = view.prompts.open_prompts if view.prompts else None

    async def _read_state(self) -> None:
        nodes = list(self._states)
        for node, value in zip(nodes, await self._transport.read_many(nodes), strict=True):
            await self._on_state(node, value)

    async def _close(self) -> None:
        try:
            for task in [*self._tasks, *([self._fetching] if self._fetching else [])]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, DeviceError):
                    await task
        finally:
            await self._transport.close()

    def _on_connection(self, event: ConnectionEvent) -> None:
        self.report_connection(event.state, event.detail, event.attempts)

    async def _on_reconnect(self) -> None:
        await self._read_state()

    # -- values --------------------------------------------------------------------------------

    async def _read(self, channel: str) -> Sample:
        node = next(n for n, c in self._channels.items() if c == channel)
        data = await self._transport.read_data(node)
        return await self._sample(channel, data, publish=False)

    async def _pump_values(self, subscription: SubscriptionApi[DataChange]) -> None:
        async for change in subscription:
            try:
                channel = self._channels.get(change.path)
                if channel is not None:
                    self.report_sample(await self._sample(channel, change))
                elif change.path in self._states:
                    await self._on_state(change.path, change.value, change.source_timestamp)
                elif change.path in self._active:
                    await self._on_active(self._active[change.path], change.value)
                elif change.path == self._prompt_var:
                    self._on_prompts(change.value)
            except (DeviceError, TypeError, ValueError):
                _log.exception("%s: unusable change %s", self.device_id, change)
            async with self._changed:
                self._changed.notify_all()

    async def _sample(self, channel: str, data: DataChange, *, publish: bool = True) -> Sample:
        descriptor = self.profile.channel(channel)
        stamp = aware(data.source_timestamp) or self.time.now()
        value: Any = data.value
        if descriptor.dtype == "float":
            value = math.nan if value is None else float(value)
        elif descriptor.dtype == "int":
            value = 0 if value is None else round(float(value))
        elif descriptor.dtype == "bool":
            value = bool(value)
        else:
            value = await self._choice(channel, value)
        return self.sample(channel, value, stamp, quality=quality(data.status), publish=publish)

    async def _choice(self, channel: str, index: Any) -> str:
        if isinstance(index, str):
            return index
        known = self._enums.setdefault(channel, [])
        position = int(index or 0)
        if position >= len(known) and self.view is not None:
            unit_name, function_name = channel.split(".", 1)
            unit = next(u for u in self.view.units if snake(u.name) == unit_name)
            function = next(f for f in unit.functions if snake(f.name) == function_name)
            found = await self._lads.enum_strings(function.value)
            if found is not None:
                known[:] = found
        return known[position] if position < len(known) else str(position)

    # -- state ---------------------------------------------------------------------------------

    async def _on_state(self, node: str, value: Any, stamp: datetime | None = None) -> None:
        """A CurrentState change. The functional and running states are two monitored items,
        delivered in item order within a publish, not in write order: a running state that
        arrives while the functional state is not (yet) Running is kept, and applied once the
        functional state turns Running, if it was written no earlier than that change."""
        name = str(plain(value) or "")
        if self._states[node] == "functional":
            self._functional = name or ""
            if name != "Running":
                self._early.clear()
            else:
                early, self._early = self._early, []
                for running, written in early:
                    if stamp is None or written is None or written >= stamp:
                        self._running = running
                        await self._apply_state()
        else:
            if self._functional != "Running" and name:
                self._early.append((name, stamp))
            self._running = name or ""
        await self._apply_state()

    async def _apply_state(self) -> None:
        state = self._combined()
        if state is None or state == self.state:
            return
        if state in (ABORTED, STOPPED) and self._server_run is not None:
            # a run that ends unfinished fails with its result: read it before the end state
            await self._read_result(self._server_run)
        await self.report_state(state)
        if state == COMPLETE and self._server_run is not None:
            self._fetch_result(self._server_run)

    def _combined(self) -> State | None:
        try:
            functional = FunctionalState(self._functional)
        except ValueError:
            return None
        if functional is not FunctionalState.RUNNING:
            return State(functional)
        try:
            return State(functional, RunningState(self._running))
        except ValueError:
            return None  # the running state is written just after the functional one

    async def _until(self, done: Any) -> None:
        async with self._changed:
            await self._changed.wait_for(done)

    async def _send_state_command(self, command: StateCommand) -> None:
        before = self.state
        target = TRANSITIONS.get((before, command))
        final = COMPLETIONS.get(target, target) if target is not None else None
        if final is not None and final.is_acting:
            final = COMPLETIONS.get(final, final)
        await self._call(str(command), STATE_METHODS[command][1])
        if final is None:
            return
        passing = {before, target}
        await self._until(lambda: self.state == final or self.state not in passing)

    # -- programs ------------------------------------------------------------------------------

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        operation = f"start_program {template.name}"
        obj, method = self._method(operation, START_PROGRAM)
        run_id = await self._refusing(
            operation,
            self._lads.start_program(
                operation,
                obj,
                method,
                template.name,
                parameters,
                run.supervisory_job_id or "",
                run.supervisory_task_id or "",
            ),
        )
        self._server_run = str(run_id) if run_id else None
        await self._until(lambda: self.state != IDLE)

    async def _on_active(self, name: str, value: Any) -> None:
        """ActiveProgram changes. A step is one CurrentStepNumber change and one CurrentStepName
        change, which a subscription may deliver in either order (they are two monitored
        items): they are paired first-in first-out, so each step is reported with its name."""
        self._active_values[name] = value
        if name == "CurrentStepName":
            self._names.append(str(plain(value) or ""))
        elif name == "CurrentStepNumber":
            self._numbers.append(int(value or 0))
        while self._names and self._numbers:
            step_name, step = self._names.pop(0), self._numbers.pop(0)
            if not step:
                continue
            number_of = int(self._active_values.get("EstimatedStepNumbers") or 0)
            await self.report_progress(
                progress=(step - 1) / number_of if number_of else 0.0,
                remaining=None,
                step_name=step_name or None,
                step_number=step,
            )

    def _fetch_result(self, server_run: str) -> None:
        if self._fetching is not None and not self._fetching.done():
            return
        self._fetching = asyncio.create_task(
            self._read_result(server_run), name=f"{self.device_id} result"
        )

    async def _read_result(self, server_run: str) -> None:
        """Read the run's Result from the ResultSet (a server publishes it as the run ends)."""
        manager = self._unit.program_manager if self._unit else None
        run = self.current_run
        if manager is None or not manager.results or run is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while (fields := await self._lads.result(manager.results, server_run)) is None:
            if loop.time() > deadline:
                _log.warning("%s: no Result %s in the ResultSet", self.device_id, server_run)
                return
            await asyncio.sleep(0.02)  # polling the server: LADS announces no new Result
        outcome = str(fields.get("Outcome") or "")
        if outcome not in ("complete", "stopped", "aborted"):
            outcome = {ABORTED: "aborted", STOPPED: "stopped"}.get(self.state, "complete")
        properties: dict[str, PropertyValue] = {}
        for item in fields.get("ResultProperties") or ():
            key, _, raw = str(item).partition("=")
            if key and key == snake(key):
                properties[key] = _property(raw)
        files = await self._result_files(str(fields.get("FileSet") or ""), server_run)
        self._server_run = None
        result = self.run_result(
            outcome,
            started=aware(fields.get("Started")),
            stopped=aware(fields.get("Stopped")),
            properties=properties,
            files=files,
            vendor_data={"lads_result": server_run},
        )
        await self.report_result(result)

    async def _result_files(self, fileset: str, server_run: str) -> list[ResultFile]:
        """The Result's files, downloaded into this adapter's folder as ``file://`` result
        files (a batch copies them into its record, SHA-256 in the audit trail). A file the
        server lists without content is left out (logged)."""
        if not fileset:
            return []
        found = []
        for name, mime_type, content in await self._lads.result_files(fileset):
            if content is None:
                _log.warning("%s: result file %s has no content to download", self.device_id, name)
                continue
            folder = self._files_folder()
            path = folder / f"{server_run}-{Path(name).name}"
            await asyncio.to_thread(path.write_bytes, content)
            found.append(
                ResultFile(
                    name=name,
                    mime_type=mime_type,
                    path=path.as_uri(),
                    sha256=hashlib.sha256(content).hexdigest(),
                )
            )
        return found

    def _files_folder(self) -> Path:
        """Where downloaded result files are kept: a temporary folder made on first use and
        removed with this adapter (when it is garbage-collected, at the latest when Python
        exits), not at close: a batch closes its devices before it has copied their last
        results' files into the record, and a caller may read them after closing."""
        if self._files is None:
            self._files = Path(tempfile.mkdtemp(prefix=f"cellauto-{self.device_id}-results-"))
            weakref.finalize(self, shutil.rmtree, self._files, ignore_errors=True)
        return self._files

    # -- prompts -------------------------------------------------------------------------------

    def _on_prompts(self, lines: Any) -> None:
        now = self.time.now()
        open_now: dict[str, OperatorPrompt] = {}
        for line in lines or ():
            prompt_id, _, rest = str(line).partition(": ")
            choices: tuple[str, ...] = ()
            if rest.endswith("]") and " [" in rest:
                rest, _, listed = rest[:-1].rpartition(" [")
                choices = tuple(c.strip() for c in listed.split("|"))
            open_now[prompt_id] = OperatorPrompt(prompt_id, self.device_id, rest, now, choices)
        for prompt_id in [p.prompt_id for p in self.prompts if p.prompt_id not in open_now]:
            answer, user = self._answers.pop(prompt_id, ("", "unknown"))
            self.report_prompt_answered(prompt_id, answer, user)
        for prompt in open_now.values():
            self.report_prompt(prompt)

    async def _answer_prompt(self, prompt: OperatorPrompt, answer: str, user: str) -> None:
        view = self.view
        if view is None or view.prompts is None:
            raise CommandRejected(
                self.device_id, f"answer_prompt {prompt.prompt_id}", "the server has no prompts"
            )
        self._answers[prompt.prompt_id] = (answer, user)
        operation = f"answer_prompt {prompt.prompt_id}"
        await self._refusing(
            operation,
            self._lads.call_strings(
                operation, view.prompts.folder, view.prompts.answer, prompt.prompt_id, answer
            ),
        )
        await self._until(lambda: prompt.prompt_id not in {p.prompt_id for p in self.prompts})

    # -- alarms --------------------------------------------------------------------------------

    async def _pump_events(self, subscription: SubscriptionApi[dict[str, Any]]) -> None:
        async for fields in subscription:
            try:
                await self._on_condition(fields)
            except (DeviceError, KeyError, TypeError, ValueError):
                _log.exception("%s: unusable condition event %s", self.device_id, fields)

    async def _on_condition(self, fields: dict[str, Any]) -> None:
        view = self.view
        source = str(fields.get("SourceNode") or "")
        if view is not None and source and source != view.node:
            return  # another device's condition
        condition = str(fields.get("NodeId") or "")
        code = snake(str(fields.get("ConditionName") or "alarm"))
        alarm_id = condition.rpartition(".Alarms.")[2] if ".Alarms." in condition else condition
        alarm_id = alarm_id or code
        self._conditions[alarm_id] = (condition, bytes(fields.get("EventId") or b""))
        time = aware(fields.get("Time")) or self.time.now()
        unit = str(fields.get("SourceName") or "").rpartition("/")[2] or None
        common: dict[str, Any] = {
            "source": snake(unit) if unit else None,
            "severity": severity_from_opcua(int(fields.get("Severity") or 500)),
            "message": str(fields.get("Message") or code),
        }
        known = alarm_id in {a.alarm_id for a in self.alarms} or alarm_id in self._seen
        if not known:
            self._seen.add(alarm_id)
            await self.report_alarm_status(alarm_id, code, "raised", time, **common)
        if fields.get("AckedState/Id"):
            await self.report_alarm_status(
                alarm_id, code, "acknowledged", time, user=self._acker, **common
            )
        if fields.get("ActiveState/Id") is False:
            await self.report_alarm_status(alarm_id, code, "cleared", time, **common)
        async with self._changed:
            self._changed.notify_all()

    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        condition, event_id = self._conditions.get(alarm.alarm_id, ("", b""))
        self._acker = user
        operation = f"acknowledge {alarm.alarm_id}"
        await self._refusing(
            operation,
            self._lads.acknowledge(operation, condition, event_id, f"acknowledged by {user}"),
        )
        await self._until(lambda: self.alarm(alarm.alarm_id).acknowledged)

    # -- calls ---------------------------------------------------------------------------------

    def _method(self, operation: str, method: str) -> tuple[str, str]:
        unit = self._unit
        if unit is None or method not in unit.methods:
            served = ", ".join(sorted(unit.methods)) if unit else "none"
            raise CommandRejected(
                self.device_id, operation, f"the server has no {method} method", hint=served
            )
        return unit.methods[method]

    async def _call(self, operation: str, method: str) -> None:
        obj, method_id = self._method(operation, method)
        await self._refusing(operation, self._lads.call_strings(operation, obj, method_id))

    async def _refusing(self, operation: str, call: Awaitable[T]) -> T:
        """Await a LADS request; a refusal becomes InvalidTransition (BadInvalidState) or
        CommandRejected naming the status."""
        try:
            return await call
        except OpcUaStatusError as exc:
            if exc.status == "BadInvalidState":
                raise InvalidTransition(self.device_id, str(self.state), operation, []) from exc
            raise CommandRejected(
                self.device_id,
                operation,
                f"the server answered {exc.status}",
                hint=_UNACCEPTED.get(exc.status, ""),
            ) from exc


def _property(raw: str) -> PropertyValue:
    """A ResultProperties value: JSON (a quantity is ``{"value", "unit"}``), else the text."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(value, dict) and {"value", "unit"} <= value.keys():
        return Quantity(value=float(value["value"]), unit=str(value["unit"]))
    if isinstance(value, bool | int | float | str):
        return value
    return raw


__all__ = ["DEVICE", "PERIOD", "LadsAdapter"]
