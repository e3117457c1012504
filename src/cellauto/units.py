"""UCUM unit codes: validation and conversion.

Codes are parsed by ucumvert (the full UCUM grammar) and converted with pint. Each code and each
pair of codes is resolved once and cached, so converting a value costs one multiply and one add.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from cellauto.errors import UnitError

# Codes people often type that UCUM spells differently. Only used to make error messages helpful.
_SUGGESTIONS = {
    "[rpm]": "{rev}/min",
    "rpm": "{rev}/min",
    "degC": "Cel",
    "°C": "Cel",
    "C": "Cel",
    "xg": "[g]",
    "g-force": "[g]",
    "cells": "{cells}",
    "cells/mL": "{cells}/mL",
    "cells/ml": "{cells}/mL",
    "sec": "s",
    "hr": "h",
    "hrs": "h",
}

# Molar masses in g/mol for analytes that devices report either as mass or as molar
# concentration. Glucose and lactate as used by clinical chemistry (lactic acid for lactate).
MOLAR_MASS_G_PER_MOL: dict[str, float] = {
    "glucose": 180.156,
    "lactate": 90.078,
    "glutamine": 146.146,
    "glutamate": 147.130,
    "ammonia": 17.031,
}

# Valid UCUM codes that ucumvert does not parse: logarithmic ("special") units. Each converts to
# itself only.
_SPECIAL_UNITS = frozenset({"[pH]"})

_ANNOTATION = re.compile(r"\{[^}]*\}")


@cache
def _registry() -> Any:
    from ucumvert import PintUcumRegistry

    return PintUcumRegistry()


@cache
def _parse(code: str) -> tuple[float, Any]:
    """Scale and pint unit that a UCUM code denotes (``10*9{cells}`` is 1e9 of a dimensionless
    unit); raises UnitError for anything that is not UCUM."""
    if not isinstance(code, str) or not code or code != code.strip():
        raise UnitError(f"{code!r} is not a UCUM unit code")
    if code == "1":
        return 1.0, _registry().dimensionless
    if code in _SPECIAL_UNITS:
        return 1.0, None
    try:
        parsed = _registry().from_ucum(code)
    except Exception as exc:
        raise UnitError(_unknown_unit_message(code)) from exc
    if not hasattr(parsed, "units"):  # a bare annotation such as {cells} means 1
        return 1.0, _registry().dimensionless
    return float(parsed.magnitude), parsed.units


def _unknown_unit_message(code: str) -> str:
    message = f"{code!r} is not a UCUM unit code"
    if code in _SUGGESTIONS:
        message += f"; did you mean {_SUGGESTIONS[code]!r}?"
    else:
        message += " (UCUM is case-sensitive: e.g. 'Cel', 'mL', 'mmol/L', '{cells}/mL', '[g]')"
    return message


def validate_unit(code: str) -> str:
    """Return `code` unchanged if it is a valid UCUM code, else raise UnitError."""
    _parse(code)
    return code


def _annotations(code: str) -> frozenset[str]:
    return frozenset(_ANNOTATION.findall(code))


@cache
def _linear(from_unit: str, to_unit: str, substance: str | None) -> tuple[float, float]:
    """Factor and offset such that ``to = from * factor + offset``."""
    (source_scale, source), (target_scale, target) = _parse(from_unit), _parse(to_unit)
    if from_unit == to_unit:
        return 1.0, 0.0
    if source is None or target is None:
        raise UnitError(
            f"cannot convert {from_unit!r} to {to_unit!r}: a logarithmic unit converts to no other"
        )
    if _annotations(from_unit) != _annotations(to_unit):
        counted = sorted(_annotations(from_unit)) or "none", sorted(_annotations(to_unit)) or "none"
        raise UnitError(
            f"cannot convert {from_unit!r} to {to_unit!r}: they count different things "
            f"({counted[0]} vs {counted[1]})"
        )
    if substance is not None and substance not in MOLAR_MASS_G_PER_MOL:
        known = ", ".join(sorted(MOLAR_MASS_G_PER_MOL))
        raise UnitError(f"no molar mass known for {substance!r} (known: {known})")
    registry = _registry()

    def convert_one(value: float) -> float:
        quantity = registry.Quantity(value * source_scale, source)
        if substance is not None and not quantity.is_compatible_with(target):
            molar_mass = registry.Quantity(MOLAR_MASS_G_PER_MOL[substance], "g/mol")
            by_mass, by_amount = quantity * molar_mass, quantity / molar_mass
            quantity = by_mass if by_mass.is_compatible_with(target) else by_amount
        return float(quantity.to(target).magnitude) / target_scale

    try:
        offset = convert_one(0.0)
        factor = convert_one(1.0) - offset
    except Exception as exc:
        hint = ""
        if substance is None and _is_mass_molar_pair(source, target):
            hint = "; a mass/molar concentration conversion needs substance=... (e.g. 'glucose')"
        raise UnitError(f"cannot convert {from_unit!r} to {to_unit!r}{hint}") from exc
    return factor, offset


def _is_mass_molar_pair(source: Any, target: Any) -> bool:
    registry = _registry()
    kinds = {str(source.dimensionality), str(target.dimensionality)}
    mass = str(registry.Quantity(1, "g/L").dimensionality)
    molar = str(registry.Quantity(1, "mol/L").dimensionality)
    return kinds == {mass, molar}


def convert(value: float, from_unit: str, to_unit: str, *, substance: str | None = None) -> float:
    """Convert `value` from one UCUM unit to another.

    `substance` names the analyte (e.g. ``"glucose"``) when converting between mass and molar
    concentration, such as ``mg/dL`` and ``mmol/L``.
    """
    factor, offset = _linear(from_unit, to_unit, substance)
    return value * factor + offset


def is_convertible(from_unit: str, to_unit: str) -> bool:
    """True if values in `from_unit` can be converted to `to_unit` without a substance."""
    try:
        _linear(from_unit, to_unit, None)
    except UnitError:
        return False
    return True
