"""The simulator kit's shared parts on their own: parameter checking, the alarm book and the
sampling policies."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cellauto.errors import FaultSpecError
from cellauto.profiles import load_profile
from cellauto.schema import ParameterSpec, Quantity
from cellauto.sim.alarms import AlarmBook
from cellauto.sim.params import Given, ParameterRefused, check_parameters
from cellauto.sim.sampling import Deadband, Periodic

VOLUME = ParameterSpec(name="volume", unit="mL", default=2, minimum=1, maximum=10, source="assumed")
MODE = ParameterSpec(name="mode", dtype="str", choices=["a", "b"])


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_number_is_accepted_exactly_when_finite_and_in_range(value: float) -> None:
    if math.isfinite(value) and 1 <= value <= 10:
        got = check_parameters([VOLUME], {"volume": Given(value)}, what="p")
        assert got["volume"] == Quantity(value=value, unit="mL")
    else:
        with pytest.raises(ParameterRefused, match="parameter volume") as refused:
            check_parameters([VOLUME], {"volume": Given(value)}, what="p")
        assert refused.value.name == "volume"


def test_defaults_units_and_names() -> None:
    assert check_parameters([VOLUME, MODE], {}, what="p") == {
        "volume": Quantity(value=2, unit="mL")
    }
    converted = check_parameters([VOLUME], {"volume": Given(0.005, "L")}, what="p")
    assert converted["volume"].value == pytest.approx(5)  # type: ignore[union-attr]
    with pytest.raises(ParameterRefused, match="in mL, not L"):
        check_parameters([VOLUME], {"volume": Given(5, "L")}, what="p", convert_units=False)
    with pytest.raises(ParameterRefused, match="unknown parameter colour"):
        check_parameters([VOLUME], {"colour": Given("red")}, what="p")
    with pytest.raises(ParameterRefused, match="not one of a, b"):
        check_parameters([MODE], {"mode": Given("c")}, what="p")
    assert check_parameters([VOLUME], {}, what="p", defaults=False) == {}
    assert check_parameters([VOLUME], {"volume": Given("3")}, what="p", text_numbers=True)


def test_a_json_parameter_is_a_value_or_a_value_with_its_unit_and_nothing_else() -> None:
    assert Given.from_json(3) == Given(3)
    assert Given.from_json({"value": 5, "unit": "mL"}) == Given(5, "mL")
    for bad in ({"value": 5}, {"value": 5, "unit": 1}, {"value": 5, "unit": "mL", "x": 0}):
        with pytest.raises(ParameterRefused, match="not a value or") as refused:
            Given.from_json(bad)
        assert refused.value.name is None


def test_the_alarm_book_keeps_an_alarm_until_cleared_and_acknowledged() -> None:
    profile = load_profile("cocoon")
    book = AlarmBook(profile, "AL-{}".format)
    alarm = book.raise_("leak")
    assert alarm is not None
    assert book.raise_("leak") is None  # one active alarm per code
    assert [a.code for a in book.clear("leak")] == ["leak"]
    assert book.get(alarm.alarm_id) is alarm  # cleared, not yet acknowledged
    assert book.acknowledge(alarm)
    assert not book.acknowledge(alarm)
    assert book.get(alarm.alarm_id) is None
    with pytest.raises(FaultSpecError, match="no alarm 'nope'"):
        book.raise_("nope")
    forgetful = AlarmBook(profile, "A{}".format, keep_unacknowledged=False)
    second = forgetful.raise_("leak")
    assert second is not None
    forgetful.clear("leak")
    assert forgetful.get(second.alarm_id) is None


def test_periodic_publishes_every_channel_at_its_own_instants() -> None:
    schedule = Periodic(load_profile("cocoon"))
    seen: dict[str, list[float]] = {}
    while schedule.next_at <= 60.0:
        at, names = schedule.pop_due()
        for name in names:
            seen.setdefault(name, []).append(at)
    for name, period in schedule.periods.items():
        count = math.floor(60.0 / period) + 1
        assert seen[name] == [k * period for k in range(count)], name


def test_deadband_publishes_on_change_beyond_its_band_or_keepalive() -> None:
    policy = Deadband({"t": 0.1}, default=5.0, keepalive=1800.0)
    assert policy.wants("t", 37.0, 0.0)
    assert policy.sent("t", 37.0, 0.0) == 0
    assert not policy.wants("t", 37.05, 60.0)
    assert policy.wants("t", 37.2, 60.0)
    assert policy.wants("t", 37.0, 1800.0)
    assert policy.wants("door", "open", 0.0)
    policy.sent("door", "open", 0.0)
    assert not policy.wants("door", "open", 10.0)
    policy.forget()
    assert policy.wants("t", 37.0, 1.0)
    assert policy.sent("t", 37.0, 1.0) == 1  # numbers go on
