"""UCUM unit validation and conversion."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cellauto import Q, Quantity, UnitError, convert
from cellauto.units import validate_unit


@pytest.mark.parametrize(
    ("value", "source", "target", "expected", "substance"),
    [
        (37.0, "Cel", "K", 310.15, None),
        (310.15, "K", "Cel", 37.0, None),
        (1.0, "L", "mL", 1000.0, None),
        (250.0, "uL", "mL", 0.25, None),
        (50.0, "%", "1", 0.5, None),
        (2.0e6, "{cells}/mL", "10*6{cells}/mL", 2.0, None),
        (3.0e9, "{cells}", "10*9{cells}", 3.0, None),
        (1.0, "[g]", "m/s2", 9.80665, None),
        (120.0, "{rev}/min", "{rev}/s", 2.0, None),
        (90.0, "mg/dL", "mmol/L", 90.0 / 18.0156, "glucose"),
        (5.0, "mmol/L", "mg/dL", 5.0 * 18.0156, "glucose"),
        (9.0078, "mg/dL", "mmol/L", 1.0, "lactate"),
        (2.0, "g/L", "mg/dL", 200.0, None),
        (36.0, "h", "d", 1.5, None),
    ],
)
def test_conversions_the_six_devices_need(
    value: float, source: str, target: str, expected: float, substance: str | None
) -> None:
    assert convert(value, source, target, substance=substance) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("code", "suggestion"),
    [("[rpm]", "{rev}/min"), ("degC", "Cel"), ("cells/mL", "{cells}/mL"), ("rpm", "{rev}/min")],
)
def test_common_non_ucum_codes_are_rejected_with_a_suggestion(code: str, suggestion: str) -> None:
    with pytest.raises(UnitError, match=f"did you mean '{suggestion}'"):
        validate_unit(code)


@pytest.mark.parametrize("code", ["", " mL", "foo", "mL/", "Cel Cel", "°F"])
def test_invalid_codes_are_rejected(code: str) -> None:
    with pytest.raises(UnitError, match="not a UCUM unit code"):
        validate_unit(code)


def test_incompatible_units_name_both() -> None:
    with pytest.raises(UnitError, match="'Cel' to 'mL'"):
        convert(1.0, "Cel", "mL")


def test_different_counted_things_do_not_convert() -> None:
    with pytest.raises(UnitError, match="count different things"):
        convert(1.0, "{cells}/mL", "{rev}/mL")


def test_mass_to_molar_needs_a_substance() -> None:
    with pytest.raises(UnitError, match="substance"):
        convert(90.0, "mg/dL", "mmol/L")
    with pytest.raises(UnitError, match="no molar mass known for 'sugar'"):
        convert(90.0, "mg/dL", "mmol/L", substance="sugar")


def test_q_builds_quantities_and_raises_unit_errors() -> None:
    assert Q(37, "Cel") == Quantity(value=37.0, unit="Cel")
    assert str(Q(37, "Cel")) == "37 Cel"
    assert Q(37, "Cel").to("K").value == pytest.approx(310.15)
    with pytest.raises(UnitError, match="did you mean"):
        Q(3000, "[rpm]")
    with pytest.raises(UnitError, match="finite"):
        Q(math.inf, "mL")


UNIT_FAMILIES = [
    ["Cel", "K"],
    ["mL", "L", "uL", "dL"],
    ["mmol/L", "umol/L", "mol/m3"],
    ["mg/dL", "g/L", "mg/L"],
    ["{cells}/mL", "10*6{cells}/mL", "{cells}/L"],
    ["s", "min", "h", "d"],
    ["%", "1"],
    ["{rev}/min", "{rev}/s"],
]

finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(
    family=st.sampled_from(UNIT_FAMILIES).flatmap(
        lambda f: st.tuples(st.sampled_from(f), st.sampled_from(f))
    ),
    value=finite,
)
def test_conversion_round_trips(family: tuple[str, str], value: float) -> None:
    source, target = family
    back = convert(convert(value, source, target), target, source)
    assert back == pytest.approx(value, rel=1e-9, abs=1e-9)


@given(value=st.floats(min_value=0, max_value=1e4, allow_nan=False))
def test_glucose_round_trips_between_mass_and_molar(value: float) -> None:
    molar = convert(value, "mg/dL", "mmol/L", substance="glucose")
    assert convert(molar, "mmol/L", "mg/dL", substance="glucose") == pytest.approx(value, abs=1e-9)


def test_ph_is_valid_but_converts_to_nothing_else() -> None:
    assert validate_unit("[pH]") == "[pH]"
    assert convert(7.2, "[pH]", "[pH]") == 7.2
    with pytest.raises(UnitError, match="logarithmic"):
        convert(7.2, "[pH]", "1")
