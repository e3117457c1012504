"""The UCUM <-> UNECE table LADS EngineeringUnits use."""

from __future__ import annotations

import pytest

from cellauto import available_profiles, load_profile
from cellauto.errors import UnitError
from cellauto.lads.units import for_ucum, ucum_from_eu, unece_unit_id, unit_table
from cellauto.units import validate_unit


def profile_units() -> set[str]:
    units: set[str] = set()
    for name in available_profiles():
        profile = load_profile(name)
        for channel in profile.channels().values():
            if channel.unit is not None:
                units.add(channel.unit)
        for program in profile.programs:
            units.update(p.unit for p in program.parameters if p.unit is not None)
        for command in profile.commands:
            units.update(p.unit for p in command.parameters if p.unit is not None)
    return units


@pytest.mark.parametrize("ucum", sorted(profile_units()))
def test_every_unit_of_every_profile_has_a_row(ucum: str) -> None:
    row = for_ucum(ucum)
    assert ucum_from_eu(row.unit_id, row.description) == ucum


def test_every_row_is_valid_ucum_and_unique() -> None:
    rows = unit_table()
    assert len({r.ucum for r in rows}) == len(rows)
    for row in rows:
        validate_unit(row.ucum)


@pytest.mark.parametrize(
    ("code", "unit_id"),
    # OPC 10000-8 §5.6.3 and the OPC Foundation's UNECE_to_OPCUA.csv
    [("CEL", 4408652), ("MLT", 5065812), ("LTR", 5002322), ("GRM", 4674125), ("BAR", 4342098)],
)
def test_unit_ids_pack_unece_codes_as_part_8_says(code: str, unit_id: int) -> None:
    assert unece_unit_id(code) == unit_id


def test_reverse_lookup_by_unit_id_alone_takes_the_first_row() -> None:
    assert ucum_from_eu(unece_unit_id("CEL")) == "Cel"
    assert ucum_from_eu(unece_unit_id("C62")) == "1"


def test_unknown_units_are_typed_errors() -> None:
    with pytest.raises(UnitError, match="no row"):
        for_ucum("mg/dL")
    with pytest.raises(UnitError, match="not in the LADS unit table"):
        ucum_from_eu(12345)
    with pytest.raises(UnitError):
        unece_unit_id("TOOLONG")
