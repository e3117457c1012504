"""Builds LADS devices in an asyncua server's address space from cellauto's model.

Every node is an instance of a type from the imported LADS/DI/Machinery nodesets
(`cellauto.lads.nodesets`), made with asyncua's `instantiate`; optional parts LADS declares are
added by instantiating the declared type, and optional methods copy their declared arguments.
The builder only builds and writes values; what a method does is the caller's handler.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.common.instantiate_util import instantiate

from cellauto.lads._ua import (
    AttributeIds,
    Node,
    ObjectIds,
    Server,
    UaError,
    data_value,
    ident,
    nid,
)
from cellauto.lads.mapping import (
    VALUE_VARIABLES,
    FunctionKind,
    StateNames,
    function_kind,
)
from cellauto.lads.nodesets import Namespaces
from cellauto.lads.units import UNECE_NAMESPACE, for_ucum
from cellauto.schema import DeviceInfo, ProgramTemplate
from cellauto.schema.profile import ChannelDescriptor, FunctionalUnit

MethodHandler = Callable[..., Awaitable[Any]]

LADS_TYPES: dict[str, int] = {
    "LADSDeviceType": 1002,
    "FunctionalUnitType": 1003,
    "FunctionSetType": 1026,
    "FunctionalUnitStateMachineType": 1043,
    "FunctionalStateMachineType": 1038,
    "RunningStateMachineType": 1036,
    "LADSDeviceStateMachineType": 1039,
    "ProgramManagerType": 1006,
    "ProgramTemplateType": 1018,
    "ResultType": 1021,
    "ResultFileType": 1001,
    "AnalogScalarSensorFunctionType": 1016,
    "AnalogControlFunctionType": 1009,
    "TwoStateDiscreteSensorFunctionType": 1031,
    "TwoStateDiscreteControlFunctionType": 1042,
    "MultiStateDiscreteSensorFunctionType": 1037,
    "MultiStateDiscreteControlFunctionType": 1045,
    "KeyValueType": 3003,
}
"""NodeIds (in the LADS namespace) of the LADS nodes the builder uses, from the nodeset."""

ACTIVE_PROGRAM_PROPERTIES: tuple[tuple[str, ua.VariantType], ...] = (
    ("CurrentProgramTemplate", ua.VariantType.String),
    ("CurrentRuntime", ua.VariantType.Double),
    ("CurrentStepName", ua.VariantType.LocalizedText),
    ("CurrentStepNumber", ua.VariantType.UInt32),
    ("EstimatedRuntime", ua.VariantType.Double),
    ("EstimatedStepNumbers", ua.VariantType.UInt32),
    ("DeviceProgramRunId", ua.VariantType.String),
)
"""The optional ActiveProgram properties served (durations in milliseconds, OPC UA Duration)."""


@dataclass
class FunctionNodes:
    """The nodes of one channel's LADS function."""

    channel: str
    kind: FunctionKind
    node: Node
    values: list[ua.NodeId]
    enum_strings: ua.NodeId | None = None
    choices: list[str] = field(default_factory=list)
    state: ua.NodeId | None = None


@dataclass
class ProgramManagerNodes:
    """The ProgramManager of a functional unit."""

    node: Node
    active: dict[str, ua.NodeId]
    results: Node


@dataclass
class UnitNodes:
    """The nodes of one functional unit."""

    name: str
    node: Node
    functional_state: ua.NodeId
    running_state: ua.NodeId
    state_machine: Node
    running_machine: Node
    functions: dict[str, FunctionNodes] = field(default_factory=dict)
    program_manager: ProgramManagerNodes | None = None


@dataclass
class DeviceNodes:
    """The nodes of one LADS device."""

    node: Node
    units: dict[str, UnitNodes] = field(default_factory=dict)


class LadsBuilder:
    """Instantiates LADS types for cellauto devices under the DI DeviceSet of `server`."""

    def __init__(self, server: Server, namespaces: Namespaces, idx: int) -> None:
        self.server = server
        self.ns = namespaces
        self.idx = idx
        self._state_ids: dict[tuple[str, str], ua.NodeId] = {}
        self._declarations: dict[ua.NodeId, list[Node]] = {}

    def lads(self, name: str) -> Node:
        """A node of the LADS nodeset by its name in `LADS_TYPES`."""
        return self.server.get_node(nid(LADS_TYPES[name], self.ns.lads))

    def q(self, name: str) -> ua.QualifiedName:
        """A LADS-namespace browse name."""
        return ua.QualifiedName(name, self.ns.lads)

    async def device_set(self) -> Node:
        """The DI DeviceSet object."""
        return await self.server.nodes.objects.get_child(ua.QualifiedName("DeviceSet", self.ns.di))

    async def new(self, parent: Node, type_name: str, nodeid: str, name: str) -> Node:
        """A new instance of a LADS type (mandatory children only) under `parent`."""
        return await self.instance(
            parent, self.lads(type_name), nodeid, ua.QualifiedName(name, self.idx)
        )

    async def optional(self, parent: Node, type_name: str, name: str) -> Node:
        """An optional LADS-declared child `name` of `parent`, as an instance of `type_name`."""
        return await self.instance(
            parent, self.lads(type_name), f"{ident(parent)}.{name}", self.q(name)
        )

    async def instance(
        self, parent: Node, type_node: Node, nodeid: str, bname: ua.QualifiedName
    ) -> Node:
        """Instantiate `type_node` with every mandatory child its type hierarchy declares.

        asyncua's `instantiate` copies the children of the instance declarations it walks; a
        nodeset may declare a child (FunctionalUnitType's FunctionalUnitState) without repeating
        the mandatory children of that child's own type, so those are completed here.
        """
        nodes = await instantiate(
            parent,
            type_node,
            nodeid=nid(nodeid, self.idx),
            bname=bname,
            dname=ua.LocalizedText(bname.Name),
            instantiate_optional=False,
        )
        created: Node = nodes[0]
        await self._complete(created)
        return created

    async def _complete(self, node: Node) -> None:
        present = {
            _key(ref.BrowseName)
            for ref in await node.get_references(
                refs=ObjectIds.HierarchicalReferences, direction=ua.BrowseDirection.Forward
            )
        }
        for declaration in await self._mandatory(await node.read_type_definition()):
            qname = await declaration.read_browse_name()
            if _key(qname) in present:
                continue
            type_id = await declaration.read_type_definition()
            if type_id is None or type_id.is_null():
                continue
            created = await self.instance(
                node, self.server.get_node(type_id), f"{ident(node)}.{qname.Name}", qname
            )
            if await declaration.read_node_class() == ua.NodeClass.Variable:
                for attr in (AttributeIds.DataType, AttributeIds.ValueRank):
                    value = await declaration.read_attribute(attr)
                    await self.server.write_attribute_value(created.nodeid, value, attr)
        for ref in await node.get_references(
            refs=ObjectIds.HasComponent, direction=ua.BrowseDirection.Forward
        ):
            if ref.NodeClass in (ua.NodeClass.Object, ua.NodeClass.Variable) and (
                ref.NodeId.NamespaceIndex == self.idx
            ):
                await self._complete(self.server.get_node(ref.NodeId))

    async def _mandatory(self, type_id: ua.NodeId | None) -> list[Node]:
        """Mandatory instance declarations of a type and its supertypes (cached)."""
        if type_id is None or type_id.is_null():
            return []
        cached = self._declarations.get(type_id)
        if cached is not None:
            return cached
        found: list[Node] = []
        names: set[tuple[int, str]] = set()
        current: ua.NodeId | None = type_id
        while current is not None and current not in _BASE_TYPES:
            type_node = self.server.get_node(current)
            for ref in await type_node.get_references(
                refs=ObjectIds.HierarchicalReferences, direction=ua.BrowseDirection.Forward
            ):
                if ref.NodeClass not in (ua.NodeClass.Object, ua.NodeClass.Variable):
                    continue
                child = self.server.get_node(ref.NodeId)
                rules = await child.get_references(refs=ObjectIds.HasModellingRule)
                mandatory = rules and rules[0].NodeId == nid(ObjectIds.ModellingRule_Mandatory)
                if mandatory and _key(ref.BrowseName) not in names:
                    names.add(_key(ref.BrowseName))
                    found.append(child)
            supers = await type_node.get_references(
                refs=ObjectIds.HasSubtype, direction=ua.BrowseDirection.Inverse
            )
            current = supers[0].NodeId if supers else None
        self._declarations[type_id] = found
        return found

    async def child(self, node: Node, *names: str, ns: int | None = None) -> Node:
        """A child by browse path; each name in the LADS namespace unless `ns` says otherwise."""
        index = self.ns.lads if ns is None else ns
        return await node.get_child([ua.QualifiedName(n, index) for n in names])

    # -- devices ---------------------------------------------------------------------------

    async def add_device(self, device_id: str, info: DeviceInfo, name: str) -> DeviceNodes:
        """A LADSDevice named `name`, identified by `info`; add units with `add_unit`."""
        node = await self.new(await self.device_set(), "LADSDeviceType", device_id, name)
        await self.write_identification(node, info)
        return DeviceNodes(node=node)

    async def write_identification(self, device: Node, info: DeviceInfo) -> None:
        """Fill the DI identification properties of `device` (and its Identification group)."""
        values = {
            "Manufacturer": ua.LocalizedText(info.manufacturer),
            "Model": ua.LocalizedText(info.model),
            "SerialNumber": info.serial_number,
            "SoftwareRevision": info.software_revision,
            "DeviceRevision": info.device_revision,
            "HardwareRevision": info.hardware_revision,
            "AssetId": info.asset_id,
            "ComponentName": ua.LocalizedText(info.component_name or info.model),
        }
        groups = [device]
        with contextlib.suppress(UaError):
            groups.append(await self.child(device, "Identification", ns=self.ns.di))
        for group in groups:
            for browse_name, value in values.items():
                try:
                    prop = await self.child(group, browse_name, ns=self.ns.di)
                except UaError:
                    continue
                await self._write_property(prop, value)

    async def _write_property(self, prop: Node, value: object) -> None:
        kind = (
            ua.VariantType.LocalizedText
            if isinstance(value, ua.LocalizedText)
            else ua.VariantType.String
        )
        await self.set(prop, ua.Variant(value, kind))

    async def set(self, node: Node, value: ua.Variant) -> None:
        """Write a value as the server; a type mismatch is a bug, so it raises."""
        status = await self.server.iserver.aspace.write_attribute_value(
            node.nodeid, AttributeIds.Value, ua.DataValue(value)
        )
        status.check()

    # -- functional units ------------------------------------------------------------------

    async def add_unit(
        self, device: DeviceNodes, device_id: str, unit: FunctionalUnit, state: StateNames
    ) -> UnitNodes:
        """A FunctionalUnit with its state machines and one function per channel."""
        unit_set = await self.child(device.node, "FunctionalUnitSet")
        node = await self.new(unit_set, "FunctionalUnitType", f"{device_id}.{unit.name}", unit.name)
        machine = await self.child(node, "FunctionalUnitState")
        running = await self.optional(machine, "RunningStateMachineType", "RunningStateMachine")
        unit_nodes = UnitNodes(
            name=unit.name,
            node=node,
            functional_state=(await machine.get_child("0:CurrentState")).nodeid,
            running_state=(await running.get_child("0:CurrentState")).nodeid,
            state_machine=machine,
            running_machine=running,
        )
        await self.write_state(unit_nodes, state)
        if unit.channels:
            function_set = await self.optional(node, "FunctionSetType", "FunctionSet")
            for channel in unit.channels:
                nodes = await self.add_function(function_set, f"{device_id}.{unit.name}", channel)
                unit_nodes.functions[f"{unit.name}.{channel.name}"] = nodes
        device.units[unit.name] = unit_nodes
        return unit_nodes

    async def add_function(
        self, function_set: Node, prefix: str, channel: ChannelDescriptor
    ) -> FunctionNodes:
        """One channel as a LADS function, with EngineeringUnits and EURange when numeric."""
        kind = function_kind(channel)
        node = await self.new(function_set, kind.value, f"{prefix}.{channel.name}", channel.name)
        if channel.description:
            await node.write_attribute(
                AttributeIds.Description,
                ua.DataValue(ua.Variant(ua.LocalizedText(channel.description))),
            )
        found = FunctionNodes(channel=channel.name, kind=kind, node=node, values=[])
        for var_name in VALUE_VARIABLES[kind]:
            var = await self.child(node, var_name)
            found.values.append(var.nodeid)
            await self._describe_value(var, kind, channel, found)
        if kind in (FunctionKind.ANALOG_CONTROL, FunctionKind.TWO_STATE_CONTROL) or (
            kind is FunctionKind.MULTI_STATE_CONTROL
        ):
            state = await self.child(node, "ControlFunctionState")
            found.state = (await state.get_child("0:CurrentState")).nodeid
        return found

    async def _describe_value(
        self, var: Node, kind: FunctionKind, channel: ChannelDescriptor, found: FunctionNodes
    ) -> None:
        if kind in (FunctionKind.ANALOG_SENSOR, FunctionKind.ANALOG_CONTROL):
            await self.set(var, ua.Variant(0.0, ua.VariantType.Double))
            if channel.unit is not None:
                eu = await var.get_child("0:EngineeringUnits")
                await self.set(eu, ua.Variant(eu_information(channel.unit)))
            rng = await var.get_child("0:EURange")
            low, high = _range(channel)
            await self.set(rng, ua.Variant(ua.Range(Low=low, High=high)))
        elif kind in (FunctionKind.TWO_STATE_SENSOR, FunctionKind.TWO_STATE_CONTROL):
            await self.set(var, ua.Variant(False, ua.VariantType.Boolean))
            for name, text in (("TrueState", "true"), ("FalseState", "false")):
                await self.set(await var.get_child(f"0:{name}"), ua.Variant(ua.LocalizedText(text)))
        else:
            found.choices = list(channel.choices or [])
            found.enum_strings = (await var.get_child("0:EnumStrings")).nodeid
            await self.set(var, ua.Variant(0, ua.VariantType.UInt32))
            await self.write_enum_strings(found)

    async def write_enum_strings(self, function: FunctionNodes) -> None:
        """Publish a multi-state function's EnumStrings (its known text values)."""
        if function.enum_strings is None:
            return
        texts = [ua.LocalizedText(c) for c in function.choices]
        await self.server.write_attribute_value(
            function.enum_strings,
            ua.DataValue(ua.Variant(texts, ua.VariantType.LocalizedText, is_array=True)),
        )

    # -- state -----------------------------------------------------------------------------

    async def state_id(self, machine_type: str, state: str) -> ua.NodeId:
        """The NodeId of a state (StateType object) in a LADS state machine type."""
        key = (machine_type, state)
        if key not in self._state_ids:
            node = await self.child(self.lads(machine_type), state)
            self._state_ids[key] = node.nodeid
        return self._state_ids[key]

    async def write_state(
        self, unit: UnitNodes, state: StateNames, code: ua.StatusCode | None = None
    ) -> None:
        """Show `state` on a unit's FunctionalUnitState and RunningStateMachine."""
        await self.write_current_state(
            unit.functional_state, "FunctionalStateMachineType", state.functional, code
        )
        await self.write_current_state(
            unit.running_state, "RunningStateMachineType", state.running, code
        )

    async def write_current_state(
        self,
        current: ua.NodeId,
        machine_type: str,
        name: str | None,
        code: ua.StatusCode | None = None,
    ) -> None:
        """Write a CurrentState variable (text and Id); None leaves it empty."""
        now = datetime.now(UTC)
        await self.server.write_attribute_value(
            current,
            data_value(ua.Variant(ua.LocalizedText(name or "")), code=code, source=now, server=now),
        )
        state_node = await self.state_id(machine_type, name) if name else nid()
        id_node = await self.server.get_node(current).get_child("0:Id")
        await self.server.write_attribute_value(
            id_node.nodeid, ua.DataValue(ua.Variant(state_node, ua.VariantType.NodeId))
        )

    # -- methods ---------------------------------------------------------------------------

    async def add_method(
        self, parent: Node, declared_in: str, name: str, handler: MethodHandler
    ) -> Node:
        """Add the optional method `name` that LADS declares on `declared_in`, with the
        declared arguments, calling `handler(object_id, *inputs)`."""
        declaration = await self.child(self.lads(declared_in), name)
        inputs = await _arguments(declaration, "InputArguments")
        outputs = await _arguments(declaration, "OutputArguments")
        return await parent.add_method(
            nid(f"{ident(parent)}.{name}", self.idx),
            self.q(name),
            handler,
            inputs,
            outputs,
        )

    # -- programs --------------------------------------------------------------------------

    async def add_program_manager(self, unit: UnitNodes) -> ProgramManagerNodes:
        """A ProgramManager on `unit`, with the ActiveProgram properties cellauto reports."""
        manager = await self.optional(unit.node, "ProgramManagerType", "ProgramManager")
        active = await self.child(manager, "ActiveProgram")
        props: dict[str, ua.NodeId] = {}
        for name, kind in ACTIVE_PROGRAM_PROPERTIES:
            prop = await active.add_property(
                nid(f"{ident(active)}.{name}", self.idx),
                self.q(name),
                ua.Variant(_empty(kind), kind),
            )
            props[name] = prop.nodeid
        nodes = ProgramManagerNodes(
            node=manager, active=props, results=await self.child(manager, "ResultSet")
        )
        unit.program_manager = nodes
        return nodes

    async def add_program_template(
        self, manager: ProgramManagerNodes, template: ProgramTemplate
    ) -> Node:
        """One ProgramTemplate in the manager's ProgramTemplateSet."""
        template_set = await self.child(manager.node, "ProgramTemplateSet")
        node = await self.new(
            template_set,
            "ProgramTemplateType",
            f"{ident(template_set)}.{template.name}",
            template.name,
        )
        await self.write_template(node, template)
        return node

    async def write_template(self, node: Node, template: ProgramTemplate) -> None:
        """Fill a ProgramTemplate's properties."""
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        values: dict[str, ua.Variant] = {
            "Author": ua.Variant(template.author, ua.VariantType.String),
            "DeviceTemplateId": ua.Variant(template.name, ua.VariantType.String),
            "Version": ua.Variant(template.version, ua.VariantType.String),
            "Description": ua.Variant(ua.LocalizedText(template.description)),
            "Created": ua.Variant(template.created or epoch, ua.VariantType.DateTime),
            "Modified": ua.Variant(template.modified or epoch, ua.VariantType.DateTime),
        }
        for name, value in values.items():
            await self.set(await self.child(node, name), value)


_BASE_TYPES = {
    nid(ObjectIds.BaseObjectType),
    nid(ObjectIds.BaseVariableType),
    nid(ObjectIds.BaseDataVariableType),
    nid(ObjectIds.PropertyType),
}


def _key(name: ua.QualifiedName) -> tuple[int, str]:
    return (name.NamespaceIndex, name.Name or "")


async def _arguments(declaration: Node, name: str) -> list[ua.Argument]:
    try:
        prop = await declaration.get_child(f"0:{name}")
    except UaError:
        return []
    value = await prop.read_value()
    return list(value or [])


def _empty(kind: ua.VariantType) -> object:
    if kind is ua.VariantType.String:
        return ""
    if kind is ua.VariantType.LocalizedText:
        return ua.LocalizedText("")
    if kind is ua.VariantType.Double:
        return 0.0
    return 0


def eu_information(ucum: str) -> ua.EUInformation:
    """The OPC UA EUInformation of a UCUM unit (UNECE code when the table has one)."""
    row = for_ucum(ucum)
    return ua.EUInformation(
        NamespaceUri=UNECE_NAMESPACE,
        UnitId=row.unit_id,
        DisplayName=ua.LocalizedText(row.symbol),
        Description=ua.LocalizedText(row.description),
    )


def _range(channel: ChannelDescriptor) -> tuple[float, float]:
    rng = channel.eu_range
    low = rng.low if rng is not None and rng.low is not None else float("-inf")
    high = rng.high if rng is not None and rng.high is not None else float("inf")
    return float(low), float(high)
