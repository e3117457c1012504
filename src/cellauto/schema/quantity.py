"""Quantities: a value with a UCUM unit code."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationError

from cellauto.errors import UnitError
from cellauto.schema._base import Model
from cellauto.units import convert, validate_unit

UnitCode = Annotated[str, AfterValidator(validate_unit)]
"""A valid UCUM unit code (case-sensitive), e.g. ``Cel``, ``mL``, ``mmol/L``, ``{cells}/mL``."""


class Quantity(Model):
    """A finite number with its UCUM unit."""

    value: float = Field(allow_inf_nan=False)
    unit: UnitCode

    def to(self, unit: str, *, substance: str | None = None) -> Quantity:
        """This quantity in another unit (``substance`` for mass/molar concentrations)."""
        return Quantity(value=convert(self.value, self.unit, unit, substance=substance), unit=unit)

    def __str__(self) -> str:
        return f"{self.value:g}" if self.unit == "1" else f"{self.value:g} {self.unit}"


def Q(value: float, unit: str) -> Quantity:
    """Shorthand for ``Quantity(value=value, unit=unit)``; raises UnitError on a bad unit."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UnitError(f"{value!r} {unit} is not a finite quantity")
    try:
        return Quantity(value=value, unit=unit)
    except ValidationError as exc:
        raise UnitError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
