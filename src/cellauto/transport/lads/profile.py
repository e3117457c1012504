"""A cellauto profile built from a browsed LADS device (`LadsDeviceView`).

- each FunctionalUnit is a functional unit; each function is a channel: analog -> float with
  its EngineeringUnits (UCUM through the LADS unit table) and EURange, two-state -> bool,
  multi-state -> str with its EnumStrings as choices; control functions are controls;
- each ProgramTemplate is a program of one step (LADS publishes no steps or parameters);
- names are made lower_snake_case where the server's are not (the map keeps the originals).

Every number in a browsed profile comes from the server: its provenance says so.
"""

from __future__ import annotations

import re

from cellauto.lads.mapping import FunctionKind
from cellauto.schema import DeviceProfile, ProgramTemplate
from cellauto.schema.profile import ChannelDescriptor, FunctionalUnit
from cellauto.schema.programs import ProgramStep
from cellauto.transport.lads.browse import FunctionView, LadsDeviceView

BROWSED = "assumed"
"""Provenance of browsed numbers: the profile schema knows public/assumed/measured sources;
what a server reports about itself is neither public nor measured by cellauto."""

_CONTROLS = {
    FunctionKind.ANALOG_CONTROL,
    FunctionKind.TWO_STATE_CONTROL,
    FunctionKind.MULTI_STATE_CONTROL,
}


def snake(name: str) -> str:
    """A browse name as a lower_snake_case cellauto name (``PHValue`` -> ``ph_value``)."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    text = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not text or not text[0].isalpha():
        text = f"x_{text}"
    return text[:64]


def channel_of(function: FunctionView) -> ChannelDescriptor:
    """The channel a LADS function is."""
    kind = function.kind
    data: dict[str, object] = {
        "name": snake(function.name),
        "kind": "control" if kind in _CONTROLS else "sensor",
        "description": function.description,
    }
    if kind in (FunctionKind.ANALOG_SENSOR, FunctionKind.ANALOG_CONTROL):
        data["dtype"] = "float"
        data["unit"] = function.unit
        if function.low is not None or function.high is not None:
            data["eu_range"] = {"low": function.low, "high": function.high, "source": BROWSED}
    elif kind in (FunctionKind.TWO_STATE_SENSOR, FunctionKind.TWO_STATE_CONTROL):
        data["dtype"] = "bool"
    else:
        data["dtype"] = "str"
        data["choices"] = list(function.choices) or None
    return ChannelDescriptor.model_validate(data)


def profile_from_view(view: LadsDeviceView, kind: str = "lads") -> DeviceProfile:
    """The profile of a browsed LADS device."""
    ident = view.identification
    units = []
    for unit in view.units:
        units.append(
            FunctionalUnit(
                name=snake(unit.name),
                kind="lads_functional_unit",
                description=f"LADS functional unit {unit.name}",
                channels=[channel_of(f) for f in unit.functions],
            )
        )
    programs = []
    program_unit = view.program_unit
    if program_unit is not None and program_unit.program_manager is not None:
        for template in program_unit.program_manager.templates:
            programs.append(
                ProgramTemplate(
                    name=template.name,
                    version=template.version or "0",
                    author=template.author or ident.get("Manufacturer", "unknown"),
                    description=template.description,
                    device=kind,
                    steps=[
                        ProgramStep(
                            name=template.name,
                            unit_operation="run_program",
                            functional_unit=snake(program_unit.name),
                        )
                    ],
                )
            )
    return DeviceProfile(
        device=kind,
        profile_version="0.0.0",
        manufacturer=ident.get("Manufacturer") or "unknown",
        model=ident.get("Model") or view.name,
        description=f"Built by browsing the LADS device {view.name!r} (OPC 30500-1).",
        protocol="docs/lads.md",
        transports=["opcua"],
        functional_units=units,
        programs=programs,
    )
