"""One device served as a LADS device: its nodes, kept live from the device's feeds, and the
LADS methods forwarded to it. Uses only the public `Device` interface."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from asyncua import ua

from cellauto.driver import acting_via
from cellauto.errors import (
    CommandRejected,
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    InvalidTransition,
)
from cellauto.feeds import Feed
from cellauto.gateway.audit import AuditCall, AuditSink
from cellauto.gateway.files import ServedFiles
from cellauto.gateway.security import Role, UserStore, current_identity
from cellauto.lads._ua import Node, ObjectIds, StatusCodes, UaError, data_value, ident, nid, status
from cellauto.lads.builder import DeviceNodes, FunctionNodes, LadsBuilder, UnitNodes
from cellauto.lads.mapping import (
    START_PROGRAM,
    STATE_METHODS,
    FunctionKind,
    StateNames,
    paired_sensor,
)
from cellauto.schema import Event, EventKind, Quality, Quantity, Result, Sample
from cellauto.state import State, StateCommand

if TYPE_CHECKING:
    from cellauto.driver import Device
    from cellauto.gateway.alarms import AlarmConditions

_log = logging.getLogger("cellauto.gateway")

METHOD_ROLES: dict[str, Role] = {
    START_PROGRAM: Role.OPERATOR,
    "Hold": Role.OPERATOR,
    "Unhold": Role.OPERATOR,
    "Suspend": Role.OPERATOR,
    "Unsuspend": Role.OPERATOR,
    "AnswerPrompt": Role.OPERATOR,
    "Acknowledge": Role.OPERATOR,
    "Confirm": Role.OPERATOR,
    "Stop": Role.SUPERVISOR,
    "Abort": Role.SUPERVISOR,
    "Clear": Role.SUPERVISOR,
    "Reset": Role.SUPERVISOR,
}
"""The least role each method needs (docs/gateway.md has the table)."""

_UNAVAILABLE = frozenset({"disconnected", "reconnecting", "lost", "closed"})
"""First words of a connection event that mean the device cannot be reached."""

_QUALITY = {
    Quality.GOOD: StatusCodes.Good,
    Quality.UNCERTAIN: StatusCodes.Uncertain,
    Quality.BAD: StatusCodes.Bad,
}


def lads_state(state: State) -> StateNames:
    """A cellauto state as LADS's two state machines show it (the names are the same)."""
    return StateNames(str(state.functional), None if state.running is None else str(state.running))


@dataclass
class _Target:
    node: ua.NodeId
    function: FunctionNodes


class DeviceBinding:
    """Serves one connected device under the gateway's DeviceSet."""

    def __init__(
        self,
        device: Device,
        builder: LadsBuilder,
        users: UserStore,
        audit: AuditSink,
        alarms: AlarmConditions,
    ) -> None:
        self.device = device
        self.builder = builder
        self.users = users
        self.audit = audit
        self.alarms = alarms
        self.nodes: DeviceNodes | None = None
        self.available = True
        self._targets: dict[str, list[_Target]] = {}
        self._last: dict[ua.NodeId, ua.Variant] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._feeds: list[Feed[Any]] = []
        self._calls: set[asyncio.Task[Any]] = set()
        self._prompts: ua.NodeId | None = None
        self._program_unit: UnitNodes | None = None
        self._results = 0
        self._files = ServedFiles(builder)

    @property
    def server(self) -> Any:
        return self.builder.server

    # -- building --------------------------------------------------------------------------

    async def build(self) -> DeviceNodes:
        """Create the device's nodes and methods (before or while the server runs)."""
        device, b = self.device, self.builder
        nodes = await b.add_device(device.device_id, device.info, device.device_id)
        state = lads_state(device.state)
        for unit in device.profile.functional_units:
            unit_nodes = await b.add_unit(nodes, device.device_id, unit, state)
            for channel in unit.channels:
                function = unit_nodes.functions[f"{unit.name}.{channel.name}"]
                own = f"{unit.name}.{channel.name}"
                pair = paired_sensor(unit, channel)
                first, *rest = function.values
                self._targets.setdefault(own, []).append(_Target(first, function))
                for node in rest:
                    source = f"{unit.name}.{pair}" if pair else own
                    self._targets.setdefault(source, []).append(_Target(node, function))
            await self._add_state_methods(unit_nodes)
        self._program_unit = nodes.units[device.profile.functional_units[0].name]
        await self._add_programs(self._program_unit)
        await self._add_prompts(nodes.node)
        self.nodes = nodes
        await self._write_device_state("Operate")
        return nodes

    async def _add_state_methods(self, unit: UnitNodes) -> None:
        for command, (machine, method) in STATE_METHODS.items():
            if command is StateCommand.START:
                continue  # a cellauto device starts only with a program: StartProgram
            parent = (
                unit.state_machine if machine == "FunctionalUnitState" else unit.running_machine
            )
            declared = (
                "FunctionalStateMachineType"
                if machine == "FunctionalUnitState"
                else "RunningStateMachineType"
            )
            await self.builder.add_method(
                parent, declared, method, self._state_handler(method, command)
            )

    async def _add_programs(self, unit: UnitNodes) -> None:
        manager = await self.builder.add_program_manager(unit)
        for template in self.device.profile.programs:
            await self.builder.add_program_template(manager, template)
        await self.builder.add_method(
            unit.state_machine,
            "FunctionalUnitStateMachineType",
            START_PROGRAM,
            self._start_program,
        )

    async def _add_prompts(self, device_node: Node) -> None:
        idx = self.builder.idx
        base = f"{self.device.device_id}.Prompts"
        folder = await device_node.add_object(nid(base, idx), ua.QualifiedName("Prompts", idx))
        var = await folder.add_variable(
            nid(f"{base}.OpenPrompts", idx),
            ua.QualifiedName("OpenPrompts", idx),
            ua.Variant([], ua.VariantType.String, is_array=True),
        )
        self._prompts = var.nodeid
        await folder.add_method(
            nid(f"{base}.AnswerPrompt", idx),
            ua.QualifiedName("AnswerPrompt", idx),
            self._answer_prompt,
            [_arg("PromptId"), _arg("Answer")],
            [],
        )
        await self._write_prompts()

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start following the device's feeds."""
        device = self.device
        samples, events, results = device.subscribe(), device.events(), device.results()
        self._feeds = [samples, events, results]
        self._tasks = [
            asyncio.create_task(self._pump_samples(samples), name=f"gateway {device.device_id}"),
            asyncio.create_task(self._pump_events(events), name=f"gateway {device.device_id}"),
            asyncio.create_task(self._pump_results(results), name=f"gateway {device.device_id}"),
        ]

    async def stop(self) -> None:
        """Stop following the device; calls in flight finish first (they are never cut)."""
        if self._calls:
            await asyncio.gather(*self._calls, return_exceptions=True)
        for feed in self._feeds:
            feed.close()  # the device keeps no subscriber of a stopped gateway
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._feeds.clear()

    async def _pump_samples(self, samples: Feed[Sample]) -> None:
        async for sample in samples:
            if not self.available:
                await self._set_available(True)
            await self._write_sample(sample)
        await self._set_available(False)

    async def _pump_events(self, events: Feed[Event]) -> None:
        async for event in events:
            try:
                await self._on_event(event)
            except Exception:
                _log.exception("%s: could not show event %s", self.device.device_id, event.kind)

    async def _pump_results(self, results: Feed[Result]) -> None:
        async for result in results:
            try:
                await self._add_result(result)
            except Exception:
                _log.exception("%s: could not publish result", self.device.device_id)

    async def _write_sample(self, sample: Sample) -> None:
        for target in self._targets.get(sample.channel, ()):
            variant = self._variant(target.function, sample.value)
            if variant is None:
                continue
            if target.function.kind in (
                FunctionKind.MULTI_STATE_SENSOR,
                FunctionKind.MULTI_STATE_CONTROL,
            ):
                await self.builder.write_enum_strings(target.function)
            self._last[target.node] = variant
            await self.server.write_attribute_value(
                target.node,
                data_value(
                    variant,
                    code=status(_QUALITY[sample.quality]),
                    source=sample.timestamp,
                    server=datetime.now(UTC),
                ),
            )

    def _variant(self, function: FunctionNodes, value: object) -> ua.Variant | None:
        kind = function.kind
        if kind in (FunctionKind.ANALOG_SENSOR, FunctionKind.ANALOG_CONTROL):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return ua.Variant(float(value), ua.VariantType.Double)
        if kind in (FunctionKind.TWO_STATE_SENSOR, FunctionKind.TWO_STATE_CONTROL):
            return ua.Variant(bool(value), ua.VariantType.Boolean)
        text = str(value)
        if text not in function.choices:
            function.choices.append(text)
        return ua.Variant(function.choices.index(text), ua.VariantType.UInt32)

    async def _on_event(self, event: Event) -> None:
        kind = event.kind
        if kind is EventKind.STATE_CHANGED:
            # the state the event names: the device may have moved on before it is written
            await self._write_state(State.parse(event.to_state) if event.to_state else None)
        elif kind is EventKind.CONNECTION_CHANGED:
            state = event.data.get("state")
            word = (state if isinstance(state, str) else event.message).split(":")[0]
            word = word.strip().lower()
            if word in _UNAVAILABLE:
                await self._set_available(False)
            elif word == "connected":
                await self._set_available(True)
        elif kind in (EventKind.PROMPT, EventKind.PROMPT_ANSWERED):
            await self._write_prompts()
        elif kind in (
            EventKind.ALARM_RAISED,
            EventKind.ALARM_ACKNOWLEDGED,
            EventKind.ALARM_CLEARED,
        ):
            alarm_id = event.data.get("alarm_id")
            if isinstance(alarm_id, str):
                await self.alarms.show(self, self.device.alarm(alarm_id))
        elif kind in (
            EventKind.PROGRAM_STARTED,
            EventKind.STEP_STARTED,
            EventKind.STEP_FINISHED,
            EventKind.PROGRAM_FINISHED,
        ):
            await self._write_active_program()

    async def _write_state(self, state: State | None = None) -> None:
        if self.nodes is None:
            return
        state = state or self.device.state
        code = None if self.available else status(StatusCodes.BadNotConnected)
        for unit in self.nodes.units.values():
            await self.builder.write_state(unit, lads_state(state), code)
            for function in unit.functions.values():
                if function.state is not None:
                    await self.builder.write_current_state(
                        function.state,
                        "FunctionalStateMachineType",
                        str(state.functional),
                        code,
                    )

    async def _write_device_state(self, name: str) -> None:
        if self.nodes is None:
            return
        machine = await self.builder.child(self.nodes.node, "DeviceState")
        current = await machine.get_child("0:CurrentState")
        code = None if self.available else status(StatusCodes.BadNotConnected)
        await self.builder.write_current_state(
            current.nodeid, "LADSDeviceStateMachineType", name, code
        )

    async def _set_available(self, available: bool) -> None:
        if available == self.available:
            return
        self.available = available
        await self._write_device_state("Operate")
        await self._write_state()
        if not available:
            bad = status(StatusCodes.BadNotConnected)
            now = datetime.now(UTC)
            for targets in self._targets.values():
                for target in targets:
                    await self.server.write_attribute_value(
                        target.node,
                        data_value(self._last.get(target.node, ua.Variant()), code=bad, server=now),
                    )

    async def _write_prompts(self) -> None:
        if self._prompts is None:
            return
        lines = [
            f"{p.prompt_id}: {p.text}" + (f" [{' | '.join(p.choices)}]" if p.choices else "")
            for p in self.device.prompts
        ]
        await self.server.write_attribute_value(
            self._prompts, ua.DataValue(ua.Variant(lines, ua.VariantType.String, is_array=True))
        )

    async def _write_active_program(self) -> None:
        unit = self._program_unit
        if unit is None or unit.program_manager is None:
            return
        props = unit.program_manager.active
        run = self.device.current_run
        operation = self.device.operation
        if run is None:
            return
        progress = operation.status if operation is not None else None
        now = self.device.time.now()
        values: dict[str, ua.Variant] = {
            "CurrentProgramTemplate": ua.Variant(run.program, ua.VariantType.String),
            "DeviceProgramRunId": ua.Variant(run.device_program_run_id, ua.VariantType.String),
            "CurrentRuntime": ua.Variant(
                (now - run.started).total_seconds() * 1000.0, ua.VariantType.Double
            ),
        }
        if run.estimated_runtime is not None:
            values["EstimatedRuntime"] = ua.Variant(
                run.estimated_runtime.total_seconds() * 1000.0, ua.VariantType.Double
            )
        if progress is not None:
            if progress.step_name is not None:
                values["CurrentStepName"] = ua.Variant(ua.LocalizedText(progress.step_name))
            if progress.step_number is not None:
                values["CurrentStepNumber"] = ua.Variant(
                    progress.step_number, ua.VariantType.UInt32
                )
            if progress.step_count is not None:
                values["EstimatedStepNumbers"] = ua.Variant(
                    progress.step_count, ua.VariantType.UInt32
                )
        for name, value in values.items():
            await self.server.write_attribute_value(props[name], ua.DataValue(value))

    async def _add_result(self, result: Result) -> None:
        unit = self._program_unit
        if unit is None or unit.program_manager is None:
            return
        b = self.builder
        self._results += 1
        node = await b.new(
            unit.program_manager.results,
            "ResultType",
            f"{ident(unit.program_manager.results)}.{result.device_program_run_id}",
            result.device_program_run_id,
        )
        properties = [
            f"{k}={json.dumps(v.model_dump(mode='json') if hasattr(v, 'model_dump') else v)}"
            for k, v in result.properties.items()
        ]
        values: dict[str, ua.Variant] = {
            "ApplicationUri": ua.Variant(self.server.get_application_uri(), ua.VariantType.String),
            "Description": ua.Variant(ua.LocalizedText(f"{result.program}: {result.outcome}")),
            "SupervisoryJobId": ua.Variant(result.supervisory_job_id or "", ua.VariantType.String),
            "SupervisoryTaskId": ua.Variant(
                result.supervisory_task_id or "", ua.VariantType.String
            ),
            "User": ua.Variant(result.user or "", ua.VariantType.String),
            "Started": ua.Variant(result.started, ua.VariantType.DateTime),
            "Stopped": ua.Variant(result.stopped, ua.VariantType.DateTime),
        }
        for name, value in values.items():
            with contextlib.suppress(UaError):
                await b.set(await b.child(node, name), value)
        await node.add_property(
            nid(f"{ident(node)}.Outcome", b.idx),
            ua.QualifiedName("Outcome", b.idx),
            ua.Variant(str(result.outcome), ua.VariantType.String),
        )
        await node.add_property(
            nid(f"{ident(node)}.ResultProperties", b.idx),
            ua.QualifiedName("ResultProperties", b.idx),
            ua.Variant(properties, ua.VariantType.String, is_array=True),
        )
        with contextlib.suppress(UaError, KeyError):
            template = await b.child(node, "ProgramTemplate")
            await b.write_template(template, self.device.profile.program(result.program))
        await self._files.add(node, result.files)

    # -- methods ---------------------------------------------------------------------------

    def _state_handler(self, method: str, command: StateCommand) -> Callable[..., Awaitable[Any]]:
        calls: dict[StateCommand, Callable[[], Awaitable[None]]] = {
            StateCommand.STOP: self.device.stop,
            StateCommand.ABORT: self.device.abort,
            StateCommand.CLEAR: self.device.clear,
            StateCommand.HOLD: self.device.hold,
            StateCommand.UNHOLD: self.device.unhold,
            StateCommand.SUSPEND: self.device.suspend,
            StateCommand.UNSUSPEND: self.device.unsuspend,
            StateCommand.RESET: self.device.reset,
        }
        call = calls[command]

        async def handler(parent: ua.NodeId, *args: Any) -> Any:
            return await self.run_call(method, None, call)

        return handler

    async def _start_program(self, parent: ua.NodeId, *args: Any) -> Any:
        template_id = str(_value(args, 0) or "")
        parameters = self._in_units(template_id, _key_values(_value(args, 1)))
        job = _value(args, 2) or None
        task = _value(args, 3) or None
        user, _ = current_identity(self.users)

        async def start() -> list[ua.Variant]:
            await self.device.start_program(
                template_id,
                parameters,
                supervisory_job_id=job,
                supervisory_task_id=task,
                user=f"opcua:{user}",
            )
            run = self.device.current_run
            run_id = run.device_program_run_id if run is not None else ""
            return [ua.Variant(run_id, ua.VariantType.String)]

        return await self.run_call(
            START_PROGRAM,
            {"program": template_id, "parameters": {k: str(v) for k, v in parameters.items()}},
            start,
        )

    def _in_units(self, program: str, given: dict[str, object]) -> dict[str, object]:
        """StartProgram properties carry numbers without units: a number given for a parameter
        the template declares with a unit is in that unit (the device then checks it)."""
        try:
            specs = {s.name: s for s in self.device.profile.program(program).parameters}
        except KeyError:
            return given
        found = dict(given)
        for name, value in given.items():
            spec = specs.get(name)
            if spec is None or spec.unit is None or isinstance(value, bool):
                continue
            if isinstance(value, int | float):
                found[name] = Quantity(value=float(value), unit=spec.unit)
        return found

    async def _answer_prompt(self, parent: ua.NodeId, *args: Any) -> Any:
        prompt_id = str(_value(args, 0) or "")
        answer = str(_value(args, 1) or "")
        user, _ = current_identity(self.users)

        async def call() -> None:
            await self.device.answer_prompt(prompt_id, answer, f"opcua:{user}")

        return await self.run_call("AnswerPrompt", {"prompt": prompt_id, "answer": answer}, call)

    async def run_call(
        self,
        method: str,
        value: Any,
        call: Callable[[], Awaitable[Any]],
    ) -> Any:
        """Check the caller's role, run `call` to its end even if the client goes away,
        audit it, and map cellauto errors to OPC UA status codes."""
        user, role = current_identity(self.users)
        needed = METHOD_ROLES[method]
        action = f"gateway.{method}"
        if role is None or role < needed:
            self.audit(
                AuditCall(user, action, self.device, value, f"refused: needs {needed.name.lower()}")
            )
            return status(StatusCodes.BadUserAccessDenied)
        task: asyncio.Task[Any] = asyncio.create_task(_run(call))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            # the client went away: the device call still completes; record how it ended
            task.add_done_callback(lambda t: self._audit_outcome(user, action, value, t))
            raise
        self._audit_outcome(user, action, value, task)
        if isinstance(result, BaseException):
            return _status(result)
        return [] if result is None else result

    def _audit_outcome(self, user: str, action: str, value: Any, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            outcome = "failed: cancelled"
        else:
            result = task.result()
            outcome = f"failed: {result}" if isinstance(result, BaseException) else "ok"
        self.audit(AuditCall(user, action, self.device, value, outcome))


async def _run(call: Callable[[], Awaitable[Any]]) -> Any:
    try:
        with acting_via("opcua"):
            return await call()
    except DeviceError as exc:
        return exc


def _status(error: BaseException) -> ua.StatusCode:
    if isinstance(error, InvalidTransition):
        return status(StatusCodes.BadInvalidState)
    if isinstance(error, DeviceTimeout):
        return status(StatusCodes.BadTimeout)
    if isinstance(error, ConnectionLost):
        return status(StatusCodes.BadNotConnected)
    if isinstance(error, CommandRejected):
        return status(StatusCodes.BadInvalidArgument)
    return status(StatusCodes.BadUnexpectedError)


def _value(args: tuple[Any, ...], index: int) -> Any:
    if index >= len(args):
        return None
    arg = args[index]
    return arg.Value if isinstance(arg, ua.Variant) else arg


def _key_values(items: Any) -> dict[str, object]:
    found: dict[str, object] = {}
    for item in items or ():
        key = getattr(item, "Key", None)
        value = getattr(item, "Value", None)
        name = getattr(key, "Name", key)
        if isinstance(value, ua.Variant):
            value = value.Value
        if name:
            found[str(name)] = value
    return found


def _arg(name: str) -> ua.Argument:
    arg = ua.Argument()
    arg.Name = name
    arg.DataType = nid(ObjectIds.String)
    arg.ValueRank = -1
    return arg
