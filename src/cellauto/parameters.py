"""Validation of program and command parameters against their declared specs and units."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from cellauto.errors import CommandRejected, UnitError
from cellauto.schema import ParameterSpec, PropertyValue, Quantity


def validate_parameters(
    specs: Sequence[ParameterSpec],
    given: Mapping[str, object] | None,
    *,
    device: str,
    operation: str,
) -> dict[str, PropertyValue]:
    """The parameters to send: defaults filled in, quantities converted to the declared unit,
    limits and choices checked. Raises CommandRejected naming the device, operation and parameter.
    """
    given = dict(given or {})
    known = {spec.name: spec for spec in specs}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise CommandRejected(
            device,
            operation,
            f"unknown parameter {', '.join(unknown)}",
            hint=f"it accepts: {', '.join(known) or 'no parameters'}",
        )
    result: dict[str, PropertyValue] = {}
    for spec in specs:
        if spec.name not in given:
            if spec.required:
                raise CommandRejected(device, operation, f"parameter {spec.name!r} is required")
            if spec.default is not None:
                result[spec.name] = _default(spec)
            continue
        result[spec.name] = _one(spec, given[spec.name], device, operation)
    return result


def _default(spec: ParameterSpec) -> PropertyValue:
    if spec.dtype in ("float", "int") and spec.unit is not None:
        return Quantity(value=float(spec.default), unit=spec.unit)  # type: ignore[arg-type]
    return spec.default  # type: ignore[return-value]


def _one(spec: ParameterSpec, value: object, device: str, operation: str) -> PropertyValue:
    where = f"parameter {spec.name!r}"
    if spec.dtype == "bool":
        if not isinstance(value, bool):
            raise CommandRejected(
                device, operation, f"{where} must be true or false, not {value!r}"
            )
        return value
    if spec.dtype == "str":
        if not isinstance(value, str):
            raise CommandRejected(device, operation, f"{where} must be text, not {value!r}")
        if spec.choices is not None and value not in spec.choices:
            raise CommandRejected(
                device,
                operation,
                f"{where} is {value!r}",
                hint=f"one of: {', '.join(spec.choices)}",
            )
        return value
    unit = spec.unit or "1"
    if isinstance(value, int | float) and not isinstance(value, bool) and not math.isfinite(value):
        raise CommandRejected(device, operation, f"{where} must be a finite number, not {value!r}")
    if isinstance(value, Quantity):
        try:
            quantity = value.to(unit)
        except UnitError as exc:
            raise CommandRejected(device, operation, f"{where}: {exc}") from exc
    elif isinstance(value, int | float) and not isinstance(value, bool) and unit == "1":
        quantity = Quantity(value=float(value), unit="1")
    else:
        raise CommandRejected(
            device,
            operation,
            f"{where} needs a quantity in {unit!r}, not {value!r}",
            hint=f"pass cellauto.Q(value, {unit!r})",
        )
    if spec.dtype == "int" and not quantity.value.is_integer():
        raise CommandRejected(device, operation, f"{where} must be a whole number of {unit}")
    low, high = spec.minimum, spec.maximum
    if (low is not None and quantity.value < low) or (high is not None and quantity.value > high):
        raise CommandRejected(
            device,
            operation,
            f"{where} is {quantity}, outside {low if low is not None else '-inf'}.."
            f"{high if high is not None else 'inf'} {unit}",
        )
    return quantity
