"""The generic SiLA 2 adapter: any SiLA 2 server as a cellauto Device.

``sila+grpc://host:port`` (TLS; ``?ca=<pem file>`` to trust a self-signed server, ``?insecure=1``
for plain gRPC). At connect it reads the server's features with the `sila2` library's dynamic
client. A server with cellauto's features (a simulator, a gateway) maps completely: its profile,
state, programs, alarms, prompts and commands. Any other server maps what it can: each
observable property whose type is numeric, boolean or string becomes a channel (units from its
SiLA unit constraint, converted to UCUM) and each command an operation
(``device.command("<feature>__<command>", ...)``, both in snake case).

When the link drops (every subscription ends with an error) the adapter reports the outage,
reconnects with the URL's reconnect limits, subscribes again and re-attaches to a running
program by its execution UUID; values published meanwhile are the declared gap. From a cellauto
server the values come on its SampleStream with the device's timestamps and publication
counters, so the gap shows in `Sample.seq` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar
from xml.etree import ElementTree

from sila2.client import SilaClient
from sila2.client.client_observable_command_instance import (
    ClientObservableCommandInstanceWithIntermediateResponses as ObservedCommand,
)

from cellauto.adapter import (
    CONNECTION,
    TIMEOUT,
    Conformance,
    Options,
    host_port,
    reconnect_policy,
    text,
)
from cellauto.driver import Device, OperatorPrompt, TimeSource
from cellauto.errors import CommandRejected, ConnectionLost, DeviceError, DeviceOptionError
from cellauto.registry import DeviceUrl
from cellauto.schema import (
    Alarm,
    CommandResult,
    DeviceInfo,
    DeviceProfile,
    Event,
    EventKind,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Quantity,
    Result,
    Sample,
)
from cellauto.sila.fdl import channels_identifier, identifier
from cellauto.sila.units import SilaUnit, UcumMapping, from_sila
from cellauto.state import ABORTED, ALREADY_THERE, COMPLETE, IDLE, STOPPED, State, StateCommand

_RUN_OVER = frozenset({COMPLETE, STOPPED, ABORTED, IDLE})

INSECURE = text("insecure", "0", "1: plain gRPC without TLS (only when the URL says so)")
CA = text("ca", "", "PEM file of the certificate (authority) to trust, e.g. a self-signed one")

_CELLAUTO = "org.cellauto/devices/DeviceIdentity/v1"
REPLAY_MARGIN = 100
"""Events read back before the newest one seen: the log's number may run ahead of the State
subscription, and `_replay_states` skips what was seen."""


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _wire(parameters: dict[str, PropertyValue]) -> str:
    return json.dumps(
        {
            name: {"value": value.value, "unit": value.unit}
            if isinstance(value, Quantity)
            else value
            for name, value in parameters.items()
        }
    )


_NS = "{http://www.sila-standard.org}"


def _unit(node: ElementTree.Element) -> SilaUnit | None:
    """The SiLA unit constraint of an element's data type (read from the FDL: the library's
    parsed constraint loses the exponents)."""
    unit = node.find(f"{_NS}DataType//{_NS}Unit")
    if unit is None:
        return None
    components = tuple(
        (c.findtext(f"{_NS}SIUnit", "Dimensionless"), int(c.findtext(f"{_NS}Exponent", "1")))
        for c in unit.iter(f"{_NS}UnitComponent")
    )
    return SilaUnit(
        unit.findtext(f"{_NS}Label", ""),
        float(unit.findtext(f"{_NS}Factor", "1")),
        float(unit.findtext(f"{_NS}Offset", "0")),
        components,
    )


def property_units(fdl: str) -> dict[str, SilaUnit]:
    """Property identifier -> its SiLA unit constraint, read from the feature's FDL."""
    units = {}
    for prop in ElementTree.fromstring(fdl).iter(f"{_NS}Property"):
        unit = _unit(prop)
        if unit is not None:
            units[prop.findtext(f"{_NS}Identifier", "")] = unit
    return units


@dataclass(frozen=True)
class ForeignParameter:
    """A foreign command's parameter as the synthesised profile declares it."""

    identifier: str  # the SiLA identifier the call takes
    spec: dict[str, Any]  # the profile's ParameterSpec
    basic: str  # SiLA basic type: Real, Integer, Boolean, String
    mapping: UcumMapping


_BASIC_DTYPE = {"Real": "float", "Integer": "int", "Boolean": "bool", "String": "str"}


def command_parameters(fdl: str) -> dict[str, list[ForeignParameter]]:
    """Command identifier -> its parameters, where every one has a basic type cellauto can
    send (a command with any other parameter type is left out)."""
    commands = {}
    for command in ElementTree.fromstring(fdl).iter(f"{_NS}Command"):
        parameters = []
        for node in command.findall(f"{_NS}Parameter"):
            basic = node.findtext(f"{_NS}DataType//{_NS}Basic", "")
            dtype = _BASIC_DTYPE.get(basic)
            if dtype is None or node.find(f"{_NS}DataType//{_NS}List") is not None:
                break
            ident = node.findtext(f"{_NS}Identifier", "")
            spec: dict[str, Any] = {
                "name": _snake(ident),
                "description": " ".join((node.findtext(f"{_NS}Description") or ident).split()),
                "dtype": dtype,
                "required": True,  # SiLA parameters have no defaults
            }
            mapping = UcumMapping("1")
            if dtype in ("float", "int"):
                sila_unit = _unit(node)
                mapping = from_sila(sila_unit) if sila_unit is not None else mapping
                spec["unit"] = mapping.unit
                if (mapping.factor, mapping.offset) != (1.0, 0.0):
                    spec["dtype"] = "float"
            choices = [v.text or "" for v in node.iter(f"{_NS}Value")]
            if dtype == "str" and choices:
                spec["choices"] = choices
            parameters.append(ForeignParameter(ident, spec, basic, mapping))
        else:
            commands[command.findtext(f"{_NS}Identifier", "")] = parameters
    return commands


def sila_argument(parameter: ForeignParameter, value: PropertyValue) -> Any:
    """A validated cellauto parameter value as the SiLA call takes it (units converted back)."""
    if isinstance(value, Quantity):
        number = float(value.to(parameter.mapping.unit).value)
        mapping = parameter.mapping
        number = (number - mapping.offset) / mapping.factor
        return round(number) if parameter.basic == "Integer" else number
    return value


def _kind(data_type: Any) -> str | None:
    """cellauto dtype of a SiLA data type node (None: not a channel)."""
    base = getattr(data_type, "base_type", data_type)
    return {
        "Real": "float",
        "Integer": "int",
        "Boolean": "bool",
        "String": "str",
    }.get(type(base).__name__)


def generic_profile(
    client: Any, server: DeviceInfo
) -> tuple[DeviceProfile, dict[str, tuple[str, str, UcumMapping]], dict[str, ForeignCommand]]:
    """A profile for a server without cellauto's features: one functional unit per feature,
    one channel per property of a mappable type (observable ones subscribed, others read on
    demand), one command per command whose parameters
    map (declared from the FDL: types, units from unit constraints, choices from set
    constraints). Also the channel -> (feature, property, unit mapping) table and the
    commands."""
    units, commands, table = [], [], {}
    foreign: dict[str, ForeignCommand] = {}
    for feature_id, feature in client._features.items():
        if feature_id in ("SiLAService", "LockController"):
            continue
        unit_name = _snake(feature_id)
        unit_of = property_units(feature._feature_definition)
        channels = []
        observable = feature._observable_properties
        for prop_id, prop in {**observable, **feature._unobservable_properties}.items():
            dtype = _kind(prop.data_type)
            if dtype is None:
                continue
            how = "" if prop_id in observable else " (not observable: read on demand)"
            channel: dict[str, Any] = {
                "name": _snake(prop_id),
                "kind": "sensor",
                "dtype": dtype,
                "description": (prop._description or prop_id) + how,
            }
            mapping = UcumMapping("1")
            if dtype in ("float", "int"):
                sila_unit = unit_of.get(prop_id)
                mapping = from_sila(sila_unit) if sila_unit is not None else UcumMapping("1")
                channel["unit"] = mapping.unit
                if mapping.factor != 1.0 or mapping.offset != 0.0:
                    channel["dtype"] = "float"
            channels.append(channel)
            table[f"{unit_name}.{channel['name']}"] = (feature_id, prop_id, mapping)
        parameters_of = command_parameters(feature._feature_definition)
        for command_id in (*feature._unobservable_commands, *feature._observable_commands):
            if command_id not in parameters_of:
                continue  # a parameter type cellauto cannot send
            name = f"{unit_name}__{_snake(command_id)}"
            parameters = parameters_of[command_id]
            commands.append(
                {
                    "name": name,
                    "description": f"SiLA command {feature_id}.{command_id} (read from the server)",
                    "parameters": [p.spec for p in parameters],
                    "source": "assumed",
                }
            )
            foreign[name] = ForeignCommand(feature_id, command_id, tuple(parameters))
        units.append(
            {
                "name": unit_name,
                "kind": "other",
                "description": feature._description or feature_id,
                "channels": channels,
            }
        )
    profile = DeviceProfile.model_validate(
        {
            "device": "sila",
            "profile_version": "0.0.0",
            "manufacturer": server.manufacturer,
            "model": server.model,
            "description": "Read from the SiLA server's features at connect.",
            "protocol": "docs/sila.md",
            "transports": ["sila"],
            "functional_units": units or [{"name": "server", "kind": "other", "description": "-"}],
            "commands": commands,
        }
    )
    return profile, table, foreign


@dataclass(frozen=True)
class ForeignCommand:
    """A command of a server without cellauto's features, as the adapter calls it."""

    feature: str
    command: str
    parameters: tuple[ForeignParameter, ...]

    def arguments(self, values: dict[str, PropertyValue]) -> dict[str, Any]:
        """SiLA keyword arguments from validated cellauto parameters."""
        return {
            p.identifier: sila_argument(p, values[p.spec["name"]])
            for p in self.parameters
            if p.spec["name"] in values
        }


class SilaAdapter(Device):
    """Any SiLA 2 server (``sila+grpc://host:port?ca=server.pem``)."""

    kind: ClassVar[str] = "sila"
    transports: ClassVar[tuple[str, ...]] = ("grpc",)
    options: ClassVar[Options] = CONNECTION | Options(INSECURE, CA)
    conformance: ClassVar[Conformance] = Conformance(program="-")
    uses_server_profile: ClassVar[bool] = True
    """Adopt the profile a cellauto server publishes (the generic adapter); a device adapter
    keeps its own."""

    def __init__(
        self, device_id: str, profile: DeviceProfile, url: DeviceUrl, *, time: TimeSource | None
    ) -> None:
        values = self.options.parse(device_id, url.options)
        super().__init__(device_id, profile, timeout=values[TIMEOUT], time=time)
        self.host, self.port = host_port(device_id, url.address)
        insecure = values[INSECURE]
        if insecure not in ("0", "1"):
            raise DeviceOptionError(device_id, "insecure", f"{insecure!r} is not 0 or 1")
        self.insecure = insecure == "1"
        ca = values[CA]
        self.root_certs = Path(ca).read_bytes() if ca else None
        self.client: Any = None
        self.cellauto = False
        self._table: dict[str, tuple[str, str, UcumMapping]] = {}
        self._subscriptions: list[Any] = []
        self._inbox: asyncio.Queue[Callable[[], Any]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runs: set[asyncio.Task[None]] = set()
        self._result: asyncio.Future[Result] | None = None
        self._closed = threading.Event()
        self._answering: dict[str, tuple[str, str]] = {}
        self._foreign_commands: dict[str, ForeignCommand] = {}
        self._latest: dict[str, float | int | bool | str] = {}
        self._backoff = reconnect_policy(values)
        self._generation = 0
        """Counts connections: a subscription of an older one that ends is no news."""
        self._connected = threading.Event()
        self._reconnecting: asyncio.Task[None] | None = None
        self._seen: dict[str, int] = {}
        self._log_seq = -1
        """The newest EventLog number seen: read back from here after a dropped link."""

    # -- connection --------------------------------------------------------------------------

    def _open(self) -> Any:
        if self.insecure:
            return SilaClient(self.host, self.port, insecure=True)
        return SilaClient(self.host, self.port, root_certs=self.root_certs)

    async def _connect(self) -> DeviceInfo:
        self._loop = asyncio.get_running_loop()
        try:
            self.client = await asyncio.to_thread(self._open)
        except Exception as exc:
            raise DeviceError(
                self.device_id, "connect", f"no SiLA server at {self.host}:{self.port}: {exc}"
            ) from exc
        client = self.client
        self.cellauto = _CELLAUTO in {
            str(f.fully_qualified_identifier) for f in client._features.values()
        }
        if self.cellauto:
            info = DeviceInfo.model_validate_json(
                await asyncio.to_thread(client.DeviceIdentity.Identity.get)
            )
            if self.uses_server_profile:
                self.profile = DeviceProfile.model_validate_json(
                    await asyncio.to_thread(client.DeviceIdentity.Profile.get)
                )
            feature = channels_identifier(self.profile.device)
            channels = getattr(client, feature, None)
            self._table = {
                name: (feature, identifier(name), UcumMapping(spec.unit or "1"))
                for name, spec in self.profile.channels().items()
                if hasattr(channels, identifier(name))
            }
        else:
            service = client.SiLAService
            info = DeviceInfo(
                manufacturer=await asyncio.to_thread(service.ServerVendorURL.get),
                model=await asyncio.to_thread(service.ServerType.get),
                serial_number=await asyncio.to_thread(service.ServerUUID.get),
                software_revision=await asyncio.to_thread(service.ServerVersion.get),
            )
            self.profile, self._table, self._foreign_commands = generic_profile(client, info)
        self._worker = asyncio.create_task(self._work(), name=f"{self.device_id} sila inbox")
        await asyncio.to_thread(self._subscribe_all)
        self._connected.set()
        if self.cellauto:
            await self.report_state(
                State.parse(await asyncio.to_thread(client.DeviceStateController.State.get))
            )
        return info

    def _post(self, action: Callable[[], Any]) -> None:
        """From a library thread: run `action` (sync or a coroutine function) in the loop, in
        order with every other notification."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop closed: the adapter is gone
            self._loop.call_soon_threadsafe(self._inbox.put_nowait, action)

    async def _work(self) -> None:
        while True:
            action = await self._inbox.get()
            try:
                outcome = action()
                if asyncio.iscoroutine(outcome):
                    await outcome
            except Exception as exc:  # one bad notification must not stop the others
                self.report_event_note(f"SiLA notification failed: {exc}")

    def report_event_note(self, message: str) -> None:
        self.report_event(EventKind.NOTE, message=message)

    def _subscribe_all(self) -> None:
        client = self.client
        watch: list[tuple[Any, Callable[[Any], Any]]] = []
        if hasattr(client, "SampleStream"):
            watch.append((client.SampleStream.Samples, self._on_sample))
        else:
            for channel, (feature, prop, mapping) in self._table.items():
                node = getattr(getattr(client, feature), prop)
                if hasattr(node, "subscribe"):  # an unobservable property is read on demand
                    watch.append((node, functools.partial(self._value, channel, mapping)))
        if self.cellauto:
            watch += [
                (client.DeviceStateController.State, self._on_state),
                (client.AlarmController.Alarms, self._on_alarms),
                (client.OperatorPrompts.OpenPrompts, self._on_prompts),
                (client.EventLog.LatestSequence, self._on_sequence),
            ]
        for prop, handler in watch:
            self._watch(prop.subscribe(), handler)

    def _watch(self, subscription: Any, handler: Callable[[Any], Any]) -> None:
        """Hand each value of `subscription` to `handler` in the loop, in order; its end,
        unless cancelled here, is a dropped link."""
        self._subscriptions.append(subscription)
        generation = self._generation

        def pump() -> None:
            error = "the server ended a subscription"
            try:
                for value in subscription:
                    self._post(functools.partial(handler, value))
            except Exception as exc:  # the library raises the stream's RpcError
                error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not subscription.is_cancelled and not self._closed.is_set():
                self._post(lambda: self._link_lost(generation, error))

        threading.Thread(target=pump, name=f"{self.device_id} sila feed", daemon=True).start()

    # -- link faults -------------------------------------------------------------------------

    def _link_lost(self, generation: int, detail: str) -> None:
        if generation != self._generation or self._reconnecting is not None:
            return
        if self._closed.is_set():
            return
        self._connected.clear()
        self.report_connection("disconnected", detail)
        self._reconnecting = asyncio.create_task(self._reconnect(), name=f"{self.device_id} redial")

    async def _reconnect(self) -> None:
        """Dial again within the reconnect limits; subscribe again once through."""
        self._generation += 1
        old, self.client = self.client, None
        self._drop_subscriptions()
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(old.close)
        attempts = 0
        for delay in self._backoff.delays():
            await asyncio.sleep(delay)  # real seconds: the link is real, whatever the clock
            attempts += 1
            self.report_connection("reconnecting", attempts=attempts)
            try:
                self.client = await asyncio.to_thread(self._open)
                if self.cellauto:
                    missed = await asyncio.to_thread(self._events_since, self.client)
                    self._post(functools.partial(self._replay_states, missed))
                # reported before the first value of the new subscriptions (same inbox)
                self._post(functools.partial(self._link_back, attempts))
                await asyncio.to_thread(self._subscribe_all)
            except Exception:  # not back yet
                self._drop_subscriptions()
                client, self.client = self.client, None
                if client is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.to_thread(client.close)
                continue
            self._reconnecting = None
            self._connected.set()
            return
        self._reconnecting = None
        self.report_connection("lost", self._backoff.limits(), attempts)

    def _events_since(self, client: Any) -> list[Event]:
        since = max(-1, self._log_seq - REPLAY_MARGIN)
        answer = client.EventLog.EventsSince(Sequence=since)
        return [Event.model_validate_json(raw) for raw in answer.Events]

    async def _replay_states(self, events: list[Event]) -> None:
        """Report the transitions the device made while the link was down, from the server's
        event log: those after the last one into the state known here (or, if none is in the
        window, from the first one out of it), so nothing seen already is reported twice."""
        changes = [e for e in events if e.kind is EventKind.STATE_CHANGED and e.to_state]
        known = str(self.state)
        into = [i for i, e in enumerate(changes) if e.to_state == known]
        if into:
            start = into[-1] + 1
        else:
            start = next((i for i, e in enumerate(changes) if e.from_state == known), len(changes))
        for event in changes[start:]:
            await self._on_state(str(event.to_state))

    def _on_sequence(self, value: int) -> None:
        self._log_seq = max(self._log_seq, int(value))

    def _link_back(self, attempts: int) -> None:
        self.report_connection("connected", attempts=attempts)

    def _drop_subscriptions(self) -> None:
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                subscription.cancel()
        self._subscriptions.clear()

    def _on_sample(self, raw: str) -> None:
        """A publication from the server's SampleStream (its device's timestamp and seq)."""
        sample = Sample.model_validate_json(raw)
        channel = sample.channel
        if channel not in self._table or sample.seq <= self._seen.get(channel, -1):
            return  # not ours, or the newest publication again (sent on every subscribe)
        self._seen[channel] = sample.seq
        self._latest[channel] = sample.value
        self.report_sample(
            self.sample(channel, sample.value, sample.timestamp, unit=sample.unit, seq=sample.seq)
        )

    def _value(self, channel: str, mapping: UcumMapping, value: Any) -> None:
        """A value from a foreign server's property subscription (stamped on arrival)."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = (
                mapping.convert(float(value))
                if self.profile.channel(channel).dtype == "float"
                else value
            )
        self._latest[channel] = value
        self.report_sample(self.sample(channel, value, self.time.now()))

    async def _on_state(self, value: str) -> None:
        state = State.parse(value)
        pending = self._result
        if state in _RUN_OVER and pending is not None:
            # the run's Result comes with RunProgram's responses: report it before the state
            # that ends the run, as the device ordered them
            self._result = None
            try:
                await asyncio.wait_for(asyncio.shield(pending), self.timeout)
                await self.report_result(pending.result())
            except (TimeoutError, DeviceError) as exc:
                self.report_event_note(f"the run's result did not arrive: {exc}")
        await self.report_state(state)

    async def _on_alarms(self, items: list[str]) -> None:
        listed = set()
        for raw in items:
            alarm = Alarm.model_validate_json(raw).model_copy(update={"device_id": self.device_id})
            listed.add(alarm.alarm_id)
            await self.report_alarm(alarm)  # no event where nothing changed
        now = self.time.now()
        for alarm in self.alarms:  # the server lists alarms until cleared and acknowledged
            if alarm.alarm_id not in listed:
                update: dict[str, Any] = {"active": False, "cleared_at": alarm.cleared_at or now}
                if not alarm.acknowledged:
                    update |= {"acknowledged": True, "acknowledged_at": now}
                await self.report_alarm(alarm.model_copy(update=update))

    async def _on_prompts(self, items: list[str]) -> None:
        open_ids = set()
        for raw in items:
            data = json.loads(raw)
            open_ids.add(data["prompt_id"])
            if data["prompt_id"] not in {p.prompt_id for p in self.prompts}:
                run = self.operation
                step = data.get("step_number")
                if run is not None and step is not None and step != run.status.step_number:
                    await self.report_progress(  # the step that waits, before its prompt
                        progress=run.status.progress,
                        remaining=run.status.remaining,
                        step_name=data.get("step_name"),
                        step_number=int(step),
                    )
                self.report_prompt(
                    OperatorPrompt(
                        data["prompt_id"],
                        self.device_id,
                        data["message"],
                        datetime.fromisoformat(data["raised_at"]),
                        tuple(data.get("choices") or ()),
                    )
                )
        for prompt in self.prompts:
            if prompt.prompt_id not in open_ids:  # answered here (in flight) or elsewhere
                answer, user = self._answering.pop(prompt.prompt_id, ("", "device"))
                self.report_prompt_answered(prompt.prompt_id, answer, user)

    async def _close(self) -> None:
        self._closed.set()
        self._drop_subscriptions()
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(BaseException):
                await self._reconnecting
        for task in [*self._runs, *([self._worker] if self._worker else [])]:
            task.cancel()
        for task in [*self._runs, *([self._worker] if self._worker else [])]:
            with contextlib.suppress(BaseException):
                await task
        if self.client is not None:
            await asyncio.to_thread(self.client.close)
            self.client = None

    # -- operations --------------------------------------------------------------------------

    async def _live(self, operation: str) -> Any:
        """The connected client, waiting while the link is being re-made (as the OPC UA
        transport does) up to half of `timeout` (the call gets the rest); ConnectionLost if it
        is not back by then."""
        if not self._connected.is_set() and self._reconnecting is not None:
            await asyncio.to_thread(self._connected.wait, self.timeout / 2)
        client = self.client
        if client is None or not self._connected.is_set():
            raise ConnectionLost(self.device_id, operation, "the SiLA link is down (reconnecting)")
        return client

    async def _sila(self, operation: str, call: Callable[[], Any]) -> Any:
        generation = self._generation
        try:
            return await asyncio.to_thread(call)
        except Exception as exc:
            if generation != self._generation or not self._connected.is_set():
                raise ConnectionLost(self.device_id, operation, "the SiLA link dropped") from exc
            raise CommandRejected(self.device_id, operation, str(exc)) from exc

    async def _read(self, channel: str) -> Sample:
        if channel in self._latest:  # the subscription's newest value is the server's current
            return self.sample(channel, self._latest[channel], self.time.now(), publish=False)
        feature, prop, mapping = self._table[channel]
        value = await self._sila(
            f"read {channel}",
            getattr(getattr(await self._live(f"read {channel}"), feature), prop).get,
        )
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = (
                mapping.convert(float(value))
                if self.profile.channel(channel).dtype == "float"
                else value
            )
        return self.sample(channel, value, self.time.now(), publish=False)

    def _cellauto_only(self, operation: str) -> None:
        if not self.cellauto:
            raise CommandRejected(
                self.device_id,
                operation,
                "the SiLA server has no cellauto features",
                hint="use device.command('<feature>__<command>', ...)",
            )

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        self._cellauto_only(f"start_program {template.name}")
        command = (await self._live(f"start_program {template.name}")).ProgramController.RunProgram
        known = {p.name: p.content_hash for p in self.profile.programs}
        program = (
            template.name
            if known.get(template.name) == template.content_hash
            else template.model_dump_json()
        )
        instance = await self._sila(
            f"start_program {template.name}",
            lambda: command(Program=program, Parameters=_wire(parameters)),
        )
        self._result = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._follow(instance, run, self._result))
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def _follow(self, instance: Any, run: ProgramRun, done: asyncio.Future[Result]) -> None:
        """Report the run's steps and progress; hand its result to `_on_state`."""
        try:
            responses = await asyncio.to_thread(self._wait, instance, self._reattach_run)
        except Exception as exc:
            if not done.done():
                done.set_exception(DeviceError(self.device_id, "start_program", str(exc)))
                done.exception()  # retrieved: `_on_state` or nobody may wait for it
            self.report_event_note(f"the run's observation ended: {exc}")
            return
        result = Result.model_validate_json(responses.Result).model_copy(
            update={"device_id": self.device_id, "device_program_run_id": run.device_program_run_id}
        )
        if not done.done():
            done.set_result(result)
        if self._result is done:  # the ending state has not arrived yet
            self._result = None
            self._post(lambda: self.report_result(result))

    def _reattach_run(self, execution: Any) -> Any:
        command = self.client.ProgramController.RunProgram
        return ObservedCommand(self.client, command, execution)

    def _watch_steps(self, instance: Any) -> Any:
        steps = instance.subscribe_to_intermediate_responses()
        steps.add_callback(lambda r: self._post(lambda: self._step(r, instance)))
        return steps

    def _wait(self, instance: Any, reattach: Callable[[Any], Any] | None = None) -> Any:
        """Block (in a worker thread) until the observable command ends or the adapter
        closes; its responses. After a dropped link `reattach(execution_uuid)` observes the
        same execution on the new connection (None: the command's end is unknown)."""
        generation = self._generation
        steps = self._watch_steps(instance) if reattach is not None else None
        try:
            while True:
                if self._closed.wait(0.01):
                    raise DeviceError(self.device_id, "observe command", "the adapter closed")
                if generation != self._generation:
                    if reattach is None:
                        raise DeviceError(self.device_id, "observe command", "the link dropped")
                    if not self._connected.is_set():
                        continue
                    generation = self._generation
                    if steps is not None:
                        steps.cancel()
                    instance = reattach(instance.execution_uuid)
                    steps = self._watch_steps(instance)
                elif instance.done:
                    try:
                        responses = instance.get_responses()
                    except Exception:
                        if generation == self._generation and self._connected.is_set():
                            raise
                    else:
                        steps = None  # the server ends it (cancelling it races the library)
                        return responses
        finally:
            if steps is not None:
                steps.cancel()

    async def _step(self, response: Any, instance: Any) -> None:
        run = self.operation
        if run is not None and (run.status.step_number or 0) > int(response.StepNumber):
            return  # a prompt already reported a later step
        remaining = instance.estimated_remaining_time
        await self.report_progress(
            progress=instance.progress or 0.0,
            remaining=remaining,
            step_name=response.StepName,
            step_number=int(response.StepNumber),
        )

    async def _send_state_command(self, command: StateCommand) -> None:
        self._cellauto_only(str(command))
        call = getattr(
            (await self._live(str(command))).DeviceStateController, str(command).capitalize()
        )
        settled = {s for s in ALREADY_THERE[command] if not s.is_acting}
        feed = self.events()
        try:
            await self._sila(str(command), call)
            # the command returns once the device applied it; its state comes on the State
            # subscription: return when it has (a device still acting after `timeout` is left
            # to report on its own)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timeout):
                    async for _ in feed:
                        if self.state in settled:
                            break
        finally:
            feed.close()

    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        self._cellauto_only("acknowledge")
        ack = (await self._live("acknowledge")).AlarmController.AcknowledgeAlarm
        await self._sila(
            f"acknowledge {alarm.alarm_id}", lambda: ack(AlarmId=alarm.alarm_id, User=user)
        )

    async def _answer_prompt(self, prompt: OperatorPrompt, answer: str, user: str) -> None:
        self._cellauto_only("answer_prompt")
        call = (await self._live("answer_prompt")).OperatorPrompts.AnswerPrompt
        self._answering[prompt.prompt_id] = (answer, user)
        try:
            await self._sila(
                f"answer_prompt {prompt.prompt_id}",
                lambda: call(PromptId=prompt.prompt_id, Answer=answer, User=user),
            )
        except BaseException:
            self._answering.pop(prompt.prompt_id, None)
            raise
        if prompt.prompt_id in {p.prompt_id for p in self.prompts}:
            self._answering.pop(prompt.prompt_id, None)
            self.report_prompt_answered(prompt.prompt_id, answer, user)

    async def _command(self, name: str, parameters: dict[str, PropertyValue]) -> CommandResult:
        if self.cellauto:
            send = (await self._live(name)).DeviceCommands.SendCommand
            raw = await self._sila(name, lambda: send(Name=name, Parameters=_wire(parameters)))
            result = CommandResult.model_validate_json(raw.Result)
            return result.model_copy(update={"device_id": self.device_id})
        foreign = self._foreign_commands[name]
        arguments = foreign.arguments(parameters)

        def invoke() -> Any:
            outcome = getattr(getattr(self.client, foreign.feature), foreign.command)(**arguments)
            if hasattr(outcome, "get_responses"):
                return self._wait(outcome)
            return outcome

        responses = await self._sila(name, invoke)
        data = {
            k: v if isinstance(v, str | int | float | bool) else str(v)
            for k, v in getattr(responses, "_asdict", dict)().items()
        }
        return self.command_result(name, data=data)
