"""Parameter checking for simulated devices: a program's or command's parameters as a host sent
them, checked against the profile's `ParameterSpec` list exactly as a protocol document states:
unknown names refused, type, unit, finiteness, range and choices checked, and every parameter
left out given its declared default (a required one without default is refused).

Each wire reads its own syntax into `Given` values (a JSON number, a text field, a unit code;
`Given.from_json` reads the JSON convention of a value or ``{"value", "unit"}``) and turns a
`ParameterRefused` into its own refusal (an OPC UA status, a NAK code) with the readable reason
the exception carries.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cellauto.errors import UnitError
from cellauto.schema import ParameterSpec, PropertyValue, Quantity

__all__ = ["Given", "ParameterRefused", "check_parameters"]

MAX_NAME = 60  # characters of a refused name quoted in a reason


@dataclass(frozen=True, slots=True)
class Given:
    """One parameter as the wire carried it: a number, bool or text, and its unit if any."""

    value: object
    unit: str | None = None

    @classmethod
    def from_json(cls, value: object) -> Given:
        """A parameter as a JSON wire carries it: a plain value, or ``{"value": v, "unit": u}``
        (`ParameterRefused` for any other object)."""
        if isinstance(value, dict):
            if set(value) != {"value", "unit"} or not isinstance(value["unit"], str):
                raise ParameterRefused(None, f"{value!r} is not a value or {{value, unit}}")
            return cls(value["value"], value["unit"])
        return cls(value)


class ParameterRefused(ValueError):
    """A parameter the device refuses; `name` (None: the set as a whole) and a readable
    `reason` that names it."""

    def __init__(self, name: str | None, reason: str) -> None:
        super().__init__(reason)
        self.name = name
        self.reason = reason


def check_parameters(
    specs: Sequence[ParameterSpec],
    given: Mapping[str, Given],
    *,
    what: str,
    convert_units: bool = True,
    text_numbers: bool = False,
    defaults: bool = True,
) -> dict[str, PropertyValue]:
    """The parameters to run with: each given one checked against its spec, numbers as a
    `Quantity` in the spec's unit, every one left out set to its default (see the module doc).

    `what` names the program or command in reasons. `convert_units`: a number in another unit
    convertible to the declared one is converted (False: refused). `text_numbers`: numbers and
    booleans may arrive as text (a text protocol). `defaults`: False leaves out what was left
    out (a command whose optional parameters mean "not given", such as entered results)."""
    known = {spec.name: spec for spec in specs}
    unknown = sorted(set(given) - set(known))
    if unknown:
        names = ", ".join(_short(n) for n in unknown)
        declared = ", ".join(known) or "none"
        raise ParameterRefused(
            unknown[0], f"{what}: unknown parameter {names} (declared: {declared})"
        )
    values: dict[str, PropertyValue] = {}
    for name, spec in known.items():
        if name in given:
            values[name] = _check(spec, given[name], what, convert_units, text_numbers)
        elif spec.default is not None and defaults:
            values[name] = _default(spec)
        elif spec.required:
            raise ParameterRefused(name, f"{what}: parameter {name} is required")
    return values


def _default(spec: ParameterSpec) -> PropertyValue:
    if spec.dtype in ("float", "int") and not isinstance(spec.default, bool | str):
        assert spec.default is not None
        assert spec.unit is not None
        return Quantity(value=float(spec.default), unit=spec.unit)
    assert spec.default is not None
    return spec.default


def _check(
    spec: ParameterSpec, given: Given, what: str, convert: bool, text: bool
) -> PropertyValue:
    name = f"{what}: parameter {spec.name}"
    value = given.value
    if spec.dtype in ("float", "int"):
        assert spec.unit is not None
        number = _number(value, text)
        if number is None:
            raise ParameterRefused(spec.name, f"{name} must be a number, not {_short(value)}")
        if not math.isfinite(number):
            raise ParameterRefused(spec.name, f"{name} must be a finite number, not {number}")
        unit = spec.unit if given.unit is None else given.unit
        if unit != spec.unit:
            if not convert:
                raise ParameterRefused(
                    spec.name, f"{name} is in {spec.unit}, not {_short(given.unit)}"
                )
            try:
                number = Quantity(value=number, unit=unit).to(spec.unit).value
            except (UnitError, ValueError):
                raise ParameterRefused(
                    spec.name, f"{name}: {_short(unit)} cannot be converted to {spec.unit}"
                ) from None
        if spec.dtype == "int" and not number.is_integer():
            raise ParameterRefused(spec.name, f"{name} must be a whole number, not {number:g}")
        shown = f"{number:g} {spec.unit}"
        if spec.minimum is not None and number < spec.minimum:
            raise ParameterRefused(
                spec.name, f"{name} = {shown} is below its minimum {spec.minimum:g} {spec.unit}"
            )
        if spec.maximum is not None and number > spec.maximum:
            raise ParameterRefused(
                spec.name, f"{name} = {shown} is above its maximum {spec.maximum:g} {spec.unit}"
            )
        return Quantity(value=number, unit=spec.unit)
    if given.unit is not None:
        raise ParameterRefused(spec.name, f"{name} is {spec.dtype} and has no unit")
    if spec.dtype == "bool":
        if isinstance(value, bool):
            return value
        if text and value in ("true", "false"):
            return value == "true"
        raise ParameterRefused(spec.name, f"{name} must be true or false, not {_short(value)}")
    if not isinstance(value, str):
        raise ParameterRefused(spec.name, f"{name} must be text, not {_short(value)}")
    if spec.choices is not None and value not in spec.choices:
        raise ParameterRefused(
            spec.name, f"{name} = {_short(value)} is not one of {', '.join(spec.choices)}"
        )
    return value


def _number(value: object, text: bool) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if text and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _short(value: object) -> str:
    shown = value if isinstance(value, str) else repr(value)
    return shown if len(shown) <= MAX_NAME else shown[: MAX_NAME - 3] + "..."
