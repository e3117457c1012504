"""Browse any OPC UA LADS server: what a client needs to use its devices without a model of
them written in advance.

`browse_devices` walks the DI DeviceSet and, for each LADS device, its FunctionalUnitSet: each
functional unit's state machines and their methods, its FunctionSet (each function's type,
value variable, EngineeringUnits, EURange, EnumStrings) and its ProgramManager (templates,
ActiveProgram properties, ResultSet). Types are recognised by the TypeDefinition each browse
reference carries, so one browse per node is enough (a type not in the LADS namespace, such as
a vendor's subtype of a LADS function type, is walked up to its LADS supertype once). What it
finds is plain data (`LadsDeviceView`); `cellauto.transport.lads.profile` turns it into a cellauto
profile.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, cast

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.uaerrors import UaError
from pydantic import TypeAdapter

from cellauto.errors import UnitError
from cellauto.lads.builder import LADS_TYPES
from cellauto.lads.mapping import VALUE_VARIABLES, FunctionKind
from cellauto.lads.nodesets import DI_URI, LADS_URI
from cellauto.lads.units import ucum_from_eu

IDENTIFICATION = (
    "Manufacturer",
    "Model",
    "SerialNumber",
    "SoftwareRevision",
    "DeviceRevision",
    "HardwareRevision",
    "AssetId",
)
"""DI identification properties read from each device (those it has)."""

_FUNCTION_TYPES = {LADS_TYPES[kind.value]: kind for kind in FunctionKind}
_MAX_TYPE_DEPTH = 16
"""Supertypes walked up from a vendor's type before giving up (a loop is a broken server)."""


@dataclass
class FunctionView:
    """One LADS function: its kind and the variable carrying its value."""

    name: str
    kind: FunctionKind
    value: str
    """NodeId string of the value variable (SensorValue or TargetValue)."""
    current: str | None = None
    """A control's CurrentValue variable, if it has one."""
    description: str = ""
    unit: str | None = None
    """UCUM code from the EngineeringUnits (None: none, or not in the LADS unit table)."""
    eu_display: str = ""
    low: float | None = None
    high: float | None = None
    choices: list[str] = field(default_factory=list)


@dataclass
class TemplateView:
    """A ProgramTemplate as browsed."""

    name: str
    description: str = ""
    version: str = ""
    author: str = ""


@dataclass
class ProgramManagerView:
    """A functional unit's ProgramManager."""

    node: str
    templates: list[TemplateView]
    active: dict[str, str]
    """ActiveProgram property name -> NodeId string."""
    results: str


@dataclass
class UnitView:
    """A functional unit: its state variables, methods (name -> (object, method) NodeId
    strings), functions and program manager."""

    name: str
    node: str
    functional_state: str
    running_state: str | None
    methods: dict[str, tuple[str, str]] = field(default_factory=dict)
    functions: list[FunctionView] = field(default_factory=list)
    program_manager: ProgramManagerView | None = None


@dataclass
class PromptsView:
    """Operator prompts a server exposes beside LADS (cellauto's gateway does): the variable
    listing open prompts and the method answering one."""

    open_prompts: str
    folder: str
    answer: str


@dataclass
class LadsDeviceView:
    """One LADS device of a server."""

    name: str
    node: str
    identification: dict[str, str]
    units: list[UnitView]
    prompts: PromptsView | None = None

    def unit(self, name: str) -> UnitView | None:
        return next((u for u in self.units if u.name == name), None)

    @property
    def program_unit(self) -> UnitView | None:
        """The first functional unit with a ProgramManager."""
        return next((u for u in self.units if u.program_manager is not None), None)


VIEWS = TypeAdapter(list[LadsDeviceView])
"""What a browse found, to and from JSON (a capture keeps it; `LadsReplay` reads it back)."""


class _Browser:
    def __init__(self, client: Client, lads: int, di: int) -> None:
        self.client = client
        self.lads = lads
        self.di = di
        self._kinds: dict[ua.NodeId, FunctionKind | None] = {}

    async def children(self, node: Node) -> list[ua.ReferenceDescription]:
        refs: list[ua.ReferenceDescription] = await node.get_references(
            refs=ObjectIds.HierarchicalReferences,
            direction=ua.BrowseDirection.Forward,
            includesubtypes=True,
        )
        return refs

    async def child(
        self, refs: list[ua.ReferenceDescription], name: str, ns: int | None = None
    ) -> ua.ReferenceDescription | None:
        return next(
            (
                r
                for r in refs
                if r.BrowseName.Name == name and (ns is None or r.BrowseName.NamespaceIndex == ns)
            ),
            None,
        )

    def node(self, ref: ua.ReferenceDescription) -> Node:
        return self.client.get_node(ref.NodeId)

    async def device(self, ref: ua.ReferenceDescription) -> LadsDeviceView | None:
        node = self.node(ref)
        refs = await self.children(node)
        unit_set = await self.child(refs, "FunctionalUnitSet", self.lads)
        if unit_set is None:
            return None
        identification: dict[str, str] = {}
        for name in IDENTIFICATION:
            found = await self.child(refs, name, self.di)
            if found is not None:
                with contextlib.suppress(UaError):
                    value = await self.node(found).read_value()
                    identification[name] = _text(value)
        units = []
        for unit_ref in await self.children(self.node(unit_set)):
            if unit_ref.NodeClass != ua.NodeClass.Object:
                continue
            unit = await self.unit(unit_ref)
            if unit is not None:
                units.append(unit)
        view = LadsDeviceView(
            name=ref.BrowseName.Name, node=_id(ref), identification=identification, units=units
        )
        prompts = await self.child(refs, "Prompts")
        if prompts is not None:
            inner = await self.children(self.node(prompts))
            open_var = await self.child(inner, "OpenPrompts")
            answer = await self.child(inner, "AnswerPrompt")
            if open_var is not None and answer is not None:
                view.prompts = PromptsView(_id(open_var), _id(prompts), _id(answer))
        return view

    async def unit(self, ref: ua.ReferenceDescription) -> UnitView | None:
        refs = await self.children(self.node(ref))
        machine = await self.child(refs, "FunctionalUnitState", self.lads)
        if machine is None:
            return None
        machine_refs = await self.children(self.node(machine))
        current = await self.child(machine_refs, "CurrentState", 0)
        if current is None:
            return None
        unit = UnitView(
            name=ref.BrowseName.Name,
            node=_id(ref),
            functional_state=_id(current),
            running_state=None,
        )
        _methods(unit, machine, machine_refs)
        running = await self.child(machine_refs, "RunningStateMachine", self.lads)
        if running is not None:
            running_refs = await self.children(self.node(running))
            running_current = await self.child(running_refs, "CurrentState", 0)
            unit.running_state = _id(running_current) if running_current else None
            _methods(unit, running, running_refs)
        function_set = await self.child(refs, "FunctionSet", self.lads)
        if function_set is not None:
            for function_ref in await self.children(self.node(function_set)):
                function = await self.function(function_ref)
                if function is not None:
                    unit.functions.append(function)
        manager = await self.child(refs, "ProgramManager", self.lads)
        if manager is not None:
            unit.program_manager = await self.program_manager(manager)
        return unit

    async def function(self, ref: ua.ReferenceDescription) -> FunctionView | None:
        kind = await self.function_kind(ref.TypeDefinition)
        if kind is None:
            return None
        node = self.node(ref)
        refs = await self.children(node)
        names = VALUE_VARIABLES[kind]
        value = await self.child(refs, names[0], self.lads)
        if value is None:
            return None
        function = FunctionView(name=ref.BrowseName.Name, kind=kind, value=_id(value))
        if len(names) > 1:
            current = await self.child(refs, names[1], self.lads)
            function.current = _id(current) if current is not None else None
        with contextlib.suppress(UaError):
            description = await node.read_description()
            function.description = description.Text or ""
        properties = await self.children(self.node(value))
        eu = await self.child(properties, "EngineeringUnits", 0)
        if eu is not None:
            info = await self.node(eu).read_value()
            if isinstance(info, ua.EUInformation):
                function.eu_display = info.DisplayName.Text or ""
                with contextlib.suppress(UnitError):
                    function.unit = ucum_from_eu(info.UnitId, info.Description.Text or "")
        rng = await self.child(properties, "EURange", 0)
        if rng is not None:
            found = await self.node(rng).read_value()
            if isinstance(found, ua.Range):
                function.low = found.Low if math.isfinite(found.Low) else None
                function.high = found.High if math.isfinite(found.High) else None
        enum = await self.child(properties, "EnumStrings", 0)
        if enum is not None:
            texts = await self.node(enum).read_value()
            function.choices = [_text(t) for t in texts or ()]
        return function

    async def function_kind(self, type_id: ua.NodeId) -> FunctionKind | None:
        """The LADS function kind of an object type: its own, or that of its nearest LADS
        supertype (a vendor's subtype of a LADS function type); None for other types."""
        if type_id not in self._kinds:
            self._kinds[type_id] = await self._supertype_kind(type_id)
        return self._kinds[type_id]

    async def _supertype_kind(self, type_id: ua.NodeId) -> FunctionKind | None:
        for _ in range(_MAX_TYPE_DEPTH):
            if type_id.NamespaceIndex == 0:  # the base types: no LADS function above
                return None
            if type_id.NamespaceIndex == self.lads:
                return _FUNCTION_TYPES.get(cast(int, type_id.Identifier))
            parents = await self.client.get_node(type_id).get_references(
                refs=ObjectIds.HasSubtype, direction=ua.BrowseDirection.Inverse
            )
            if not parents:
                return None
            type_id = parents[0].NodeId
        return None

    async def program_manager(self, ref: ua.ReferenceDescription) -> ProgramManagerView:
        refs = await self.children(self.node(ref))
        templates: list[TemplateView] = []
        template_set = await self.child(refs, "ProgramTemplateSet", self.lads)
        if template_set is not None:
            for template_ref in await self.children(self.node(template_set)):
                if template_ref.NodeClass == ua.NodeClass.Object:
                    templates.append(await self.template(template_ref))
        active: dict[str, str] = {}
        active_ref = await self.child(refs, "ActiveProgram", self.lads)
        if active_ref is not None:
            for prop in await self.children(self.node(active_ref)):
                if prop.NodeClass == ua.NodeClass.Variable:
                    active[prop.BrowseName.Name] = _id(prop)
        results = await self.child(refs, "ResultSet", self.lads)
        return ProgramManagerView(
            node=_id(ref),
            templates=templates,
            active=active,
            results=_id(results) if results is not None else "",
        )

    async def template(self, ref: ua.ReferenceDescription) -> TemplateView:
        refs = await self.children(self.node(ref))
        values: dict[str, str] = {}
        for name in ("DeviceTemplateId", "Description", "Version", "Author"):
            found = await self.child(refs, name)
            if found is not None:
                with contextlib.suppress(UaError):
                    values[name] = _text(await self.node(found).read_value())
        return TemplateView(
            name=values.get("DeviceTemplateId") or ref.BrowseName.Name,
            description=values.get("Description", ""),
            version=values.get("Version", ""),
            author=values.get("Author", ""),
        )


def _methods(unit: UnitView, parent: ua.ReferenceDescription, refs: list[Any]) -> None:
    for ref in refs:
        if ref.NodeClass == ua.NodeClass.Method:
            unit.methods[ref.BrowseName.Name] = (_id(parent), _id(ref))


def _id(ref: ua.ReferenceDescription) -> str:
    return str(ref.NodeId.to_string())


def _text(value: object) -> str:
    if isinstance(value, ua.LocalizedText):
        return value.Text or ""
    return "" if value is None else str(value)


async def browse_devices(client: Client) -> list[LadsDeviceView]:
    """Every LADS device in the server's DI DeviceSet (empty if the server has none)."""
    namespaces: list[str] = await client.get_namespace_array()
    if LADS_URI not in namespaces or DI_URI not in namespaces:
        return []
    browser = _Browser(client, namespaces.index(LADS_URI), namespaces.index(DI_URI))
    objects = await browser.children(client.nodes.objects)
    device_set = await browser.child(objects, "DeviceSet", browser.di)
    if device_set is None:
        return []
    found = []
    for ref in await browser.children(browser.node(device_set)):
        if ref.NodeClass == ua.NodeClass.Object:
            device = await browser.device(ref)
            if device is not None:
                found.append(device)
    return found
