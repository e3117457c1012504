"""UCUM <-> UNECE Recommendation 20 codes, and OPC UA EUInformation built from them.

The table is data (``schemas/lads_units.toml``); OPC 10000-8 §5.6.3 packs a UNECE common code
into the Int32 ``unitId`` of an EUInformation.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache

from cellauto.errors import UnitError
from cellauto.resources import schemas_dir

UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
"""The EUInformation namespaceUri of UNECE Rec 20 codes (OPC 10000-8 §5.6.3)."""

NO_UNIT_ID = -1
_UCUM_IN_DESCRIPTION = re.compile(r"\(UCUM: (?P<code>[^)]+)\)$")


@dataclass(frozen=True, slots=True)
class UnitRow:
    """One row of the table: a UCUM code, its UNECE common code ('' if none), symbol, name."""

    ucum: str
    unece: str
    symbol: str
    name: str

    @property
    def unit_id(self) -> int:
        """The EUInformation unitId: the UNECE code packed as OPC 10000-8 says, or -1."""
        return unece_unit_id(self.unece) if self.unece else NO_UNIT_ID

    @property
    def description(self) -> str:
        """EUInformation Description text; it names the UCUM code so a reader can recover it."""
        return f"{self.name} (UCUM: {self.ucum})"


def unece_unit_id(code: str) -> int:
    """Pack a UNECE common code (up to three ASCII characters) into an OPC UA unitId."""
    if not 1 <= len(code) <= 3 or not code.isascii():
        raise UnitError(f"{code!r} is not a UNECE Rec 20 common code")
    value = 0
    for char in code:
        value = (value << 8) | ord(char)
    return value


@cache
def unit_table() -> tuple[UnitRow, ...]:
    """Every row of ``schemas/lads_units.toml``."""
    with (schemas_dir() / "lads_units.toml").open("rb") as handle:
        rows = tomllib.load(handle)["unit"]
    return tuple(UnitRow(**row) for row in rows)


@cache
def _by_ucum() -> dict[str, UnitRow]:
    return {row.ucum: row for row in unit_table()}


@cache
def _by_unit_id() -> dict[int, UnitRow]:
    found: dict[int, UnitRow] = {}
    for row in unit_table():
        if row.unece:
            found.setdefault(row.unit_id, row)
    return found


def for_ucum(ucum: str) -> UnitRow:
    """The table row of a UCUM code; UnitError naming the code if the table lacks it."""
    try:
        return _by_ucum()[ucum]
    except KeyError:
        raise UnitError(
            f"UCUM unit {ucum!r} has no row in the LADS unit table (schemas/lads_units.toml)"
        ) from None


def ucum_from_eu(unit_id: int, description: str = "") -> str:
    """The UCUM code of an EUInformation: from its Description if it names one, else by
    unitId; UnitError if neither is known."""
    match = _UCUM_IN_DESCRIPTION.search(description)
    if match:
        return match.group("code")
    row = _by_unit_id().get(unit_id)
    if row is None:
        raise UnitError(f"EUInformation unitId {unit_id} is not in the LADS unit table")
    return row.ucum
