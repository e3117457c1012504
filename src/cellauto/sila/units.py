"""SiLA 2 unit constraints <-> UCUM codes.

SiLA gives a unit as a free label plus its decomposition into SI base units with a factor and an
offset (``SI value = value * factor + offset``); cellauto uses UCUM codes. `to_sila` derives the
decomposition of any UCUM code from the unit registry; `from_sila` returns a UCUM code for a SiLA
unit and the factor and offset that convert the wire value into it (identity when the label is
itself a UCUM code of the same quantity, otherwise the SI composition the components name).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cellauto.errors import UnitError
from cellauto.units import _parse, _registry

SI_UNITS = ("Dimensionless", "Meter", "Kilogram", "Second", "Ampere", "Kelvin", "Mole", "Candela")
"""The SI units a SiLA UnitComponent may name (SiLA 2 Part A, Unit Constraint)."""

_PINT_TO_SI = {
    "meter": ("Meter", "m"),
    "kilogram": ("Kilogram", "kg"),
    "second": ("Second", "s"),
    "ampere": ("Ampere", "A"),
    "kelvin": ("Kelvin", "K"),
    "mole": ("Mole", "mol"),
    "candela": ("Candela", "cd"),
}
_SI_TO_UCUM = dict(_PINT_TO_SI.values())

_LABELS = {"Cel": "°C", "uL": "µL", "[pH]": "pH", "{rev}/min": "rpm"}
"""Display labels where the UCUM code is not what a person reads."""
_LABEL_ALIASES = {label: code for code, label in _LABELS.items()} | {"degC": "Cel", "min-1": "/min"}


@dataclass(frozen=True, slots=True)
class SilaUnit:
    """A SiLA Unit Constraint: label, factor, offset and (SI unit, exponent) components."""

    label: str
    factor: float
    offset: float
    components: tuple[tuple[str, int], ...]

    def to_xml(self, indent: str = "") -> str:
        """The ``<Unit>`` element of a Constraints block."""
        parts = [
            f"{indent}<Unit>",
            f"{indent}  <Label>{_escape(self.label)}</Label>",
            f"{indent}  <Factor>{_number(self.factor)}</Factor>",
            f"{indent}  <Offset>{_number(self.offset)}</Offset>",
        ]
        for si, exponent in self.components or (("Dimensionless", 1),):
            parts += [
                f"{indent}  <UnitComponent>",
                f"{indent}    <SIUnit>{si}</SIUnit>",
                f"{indent}    <Exponent>{exponent}</Exponent>",
                f"{indent}  </UnitComponent>",
            ]
        parts.append(f"{indent}</Unit>")
        return "\n".join(parts)


@dataclass(frozen=True, slots=True)
class UcumMapping:
    """How a SiLA value becomes a cellauto value: ``value * factor + offset`` in `unit`."""

    unit: str
    factor: float = 1.0
    offset: float = 0.0

    def convert(self, value: float) -> float:
        return (
            value if (self.factor, self.offset) == (1.0, 0.0) else value * self.factor + self.offset
        )


def _number(value: float) -> str:
    """An xs:decimal (no exponent)."""
    return format(Decimal(repr(float(value))).normalize(), "f")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _round(value: float) -> float:
    """Strip the float noise of unit arithmetic (1.0000000000000002e-06 -> 1e-06)."""
    return 0.0 if value == 0 else float(f"{value:.12g}")


def to_sila(code: str) -> SilaUnit:
    """The SiLA unit constraint of UCUM `code` (UnitError if it is not UCUM; ``[pH]`` and
    other logarithmic units are dimensionless with factor 1)."""
    scale, unit = _parse(code)
    label = _LABELS.get(code, code)
    if unit is None:
        return SilaUnit(label, 1.0, 0.0, (("Dimensionless", 1),))
    registry: Any = _registry()
    zero = registry.Quantity(0.0 * scale, unit).to_base_units()
    one = registry.Quantity(1.0 * scale, unit).to_base_units()
    components = []
    for name, exponent in dict(one.units._units).items():
        if name not in _PINT_TO_SI or not float(exponent).is_integer():
            raise UnitError(f"{code!r} has no SiLA SI decomposition (base unit {name!r})")
        components.append((_PINT_TO_SI[name][0], int(exponent)))
    order = {si: i for i, si in enumerate(SI_UNITS)}
    components.sort(key=lambda c: order[c[0]])
    offset = _round(float(zero.magnitude))
    factor = _round(float(one.magnitude) - float(zero.magnitude))
    return SilaUnit(label, factor, offset, tuple(components) or (("Dimensionless", 1),))


def si_code(components: tuple[tuple[str, int], ...]) -> str:
    """The UCUM code of a product of SI base units (``m3.s-1``; ``1`` if dimensionless)."""
    terms = [
        _SI_TO_UCUM[si] + ("" if exponent == 1 else str(exponent))
        for si, exponent in components
        if si != "Dimensionless" and exponent != 0
    ]
    return ".".join(terms) or "1"


def _same(a: SilaUnit, b: SilaUnit) -> bool:
    drop = {c for c in a.components + b.components if c[0] == "Dimensionless"}
    return (
        sorted(set(a.components) - drop) == sorted(set(b.components) - drop)
        and math.isclose(a.factor, b.factor, rel_tol=1e-9)
        and math.isclose(a.offset, b.offset, rel_tol=1e-9, abs_tol=1e-12)
    )


def from_sila(unit: SilaUnit) -> UcumMapping:
    """The UCUM unit a value constrained by `unit` is recorded in, and its conversion."""
    for candidate in (_LABEL_ALIASES.get(unit.label), unit.label):
        if candidate is None:
            continue
        try:
            if _same(to_sila(candidate), unit):
                return UcumMapping(candidate)
        except UnitError:
            continue
    return UcumMapping(si_code(unit.components), unit.factor, unit.offset)
