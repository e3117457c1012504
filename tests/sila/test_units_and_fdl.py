"""SiLA unit constraints <-> UCUM, and cellauto's FDL files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sila2.framework import Feature

from cellauto.profiles import available_profiles, load_profile
from cellauto.sila import SilaUnit, channel_feature, from_sila, load_feature, to_sila
from cellauto.sila.features import FEATURES, SIMULATION_CONTROLLER, render

UNITS = ["Cel", "%", "mL", "mmol/L", "mmol/L/d", "h", "mL/min", "{cells}/mL", "kPa", "[pH]", "uL"]


def test_known_units_decompose_into_si() -> None:
    assert to_sila("Cel") == SilaUnit("°C", 1.0, 273.15, (("Kelvin", 1),))
    assert to_sila("%") == SilaUnit("%", 0.01, 0.0, (("Dimensionless", 1),))
    assert to_sila("mL/min").components == (("Meter", 3), ("Second", -1))
    assert to_sila("s") == SilaUnit("s", 1.0, 0.0, (("Second", 1),))


@pytest.mark.parametrize("code", UNITS)
def test_every_ucum_unit_round_trips(code: str) -> None:
    assert from_sila(to_sila(code)).unit == code


@given(st.floats(1e-9, 1e9), st.sampled_from([("Meter", 3), ("Second", -1), ("Mole", 1)]))
def test_a_foreign_label_becomes_the_si_composition_with_its_conversion(
    factor: float, component: tuple[str, int]
) -> None:
    mapping = from_sila(SilaUnit("furlongs", factor, 0.0, (component,)))
    assert mapping.factor == factor
    assert mapping.convert(2.0) == pytest.approx(2.0 * factor)


def test_fdl_files_are_current_and_valid() -> None:
    assert render(check=True) == [], "run: python -m cellauto.sila.features"
    for spec in (*FEATURES, SIMULATION_CONTROLLER):
        Feature(load_feature(spec.identifier))  # the library validates against the FDL schema


@pytest.mark.parametrize("device", available_profiles())
def test_every_profile_has_a_valid_channel_feature(device: str) -> None:
    feature, names = channel_feature(load_profile(device))
    Feature(feature.xml())
    assert sorted(names.values()) == sorted(load_profile(device).channels())
