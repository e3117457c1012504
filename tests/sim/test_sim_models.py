"""Process models: growth curve shape, feeds, control loops, noise, determinism, invariants."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cellauto.errors import SimulationError
from cellauto.profiles import load_profile
from cellauto.sim import (
    TEMPERATURE_LOOP,
    VARIABLES,
    Bioreactor,
    BioreactorParams,
    ControlLoop,
    Culture,
    CultureParams,
    Medium,
)

H = 3600.0


def density_curve(culture: Culture, hours: int) -> list[float]:
    curve = [culture.state.viable]
    for _ in range(hours):
        culture.step(H)
        curve.append(culture.state.viable)
    return curve


def test_growth_has_lag_exponential_plateau_and_death() -> None:
    culture = Culture()
    culture.seed(5e7, 100.0)
    x = density_curve(culture, 12 * 24)
    x0 = x[0]
    # lag: barely any growth in the first 6 h
    assert x[6] / x0 < 1.05
    # exponential: between 48 h and 96 h the rate is close to mu_max (glucose still high)
    rate = math.log(x[96] / x[48]) / 48
    assert 0.7 * CultureParams().mu_max < rate <= CultureParams().mu_max
    # the peak comes when glucose runs out, then viable cells decline
    peak = max(range(len(x)), key=x.__getitem__)
    assert 100 < peak < 200
    assert x[-1] < 0.2 * x[peak]
    assert culture.state.glucose < 0.01
    assert culture.state.viability < 0.2
    assert culture.state.lactate == pytest.approx(
        CultureParams().lactate_yield * Medium().glucose, rel=1e-6
    )


def test_growth_is_capped_by_the_carrying_capacity() -> None:
    rich = Medium(glucose=500.0, bicarbonate=500.0)
    culture = Culture(CultureParams(max_density=2e6, lag=0), rich)
    culture.seed(2e7, 20.0)
    curve = density_curve(culture, 10 * 24)
    assert max(curve) <= 2e6 * 1.0001
    assert curve[-1] > 1.5e6


def test_feeding_restores_glucose_and_dilutes() -> None:
    culture = Culture()
    culture.seed(5e7, 100.0)
    culture.step(7 * 24 * H)
    assert culture.state.glucose < 0.1
    cells = culture.state.total_viable
    lactate = culture.state.lactate
    culture.exchange(80.0)
    assert culture.state.volume == pytest.approx(100.0)
    assert culture.state.glucose == pytest.approx(0.8 * Medium().glucose, rel=0.01)
    assert culture.state.lactate == pytest.approx(0.2 * lactate, rel=1e-9)
    assert culture.state.total_viable == pytest.approx(cells)  # cells retained
    culture.feed(100.0)
    assert culture.state.volume == pytest.approx(200.0)
    assert culture.state.total_viable == pytest.approx(cells)
    culture.exchange(50.0, cell_retention=0.0)
    assert culture.state.total_viable == pytest.approx(cells * 0.75)


def test_large_steps_agree_with_small_steps() -> None:
    fine, coarse = Culture(), Culture()
    fine.seed(5e7, 100.0)
    coarse.seed(5e7, 100.0)
    for _ in range(5 * 24 * 60):
        fine.step(60.0)
    coarse.step(5 * 24 * H)
    assert coarse.state.viable == pytest.approx(fine.state.viable, rel=0.02)
    assert coarse.state.glucose == pytest.approx(fine.state.glucose, rel=0.02)


def test_controller_converges_to_setpoint_from_cold_with_noise() -> None:
    reactor = Bioreactor(seed=3, initial={"temperature": 22.0, "co2": 0.04})
    reactor.step(4 * H)
    temps = []
    for _ in range(600):
        reactor.step(10.0)
        temps.append(reactor.read("temperature").value)
    assert statistics.fmean(temps) == pytest.approx(37.0, abs=0.01)
    assert statistics.stdev(temps) == pytest.approx(0.02, rel=0.2)
    assert reactor.read("co2", noisy=False).value == pytest.approx(5.0, abs=1e-3)


def test_heater_saturates_then_settles_without_windup() -> None:
    loop = ControlLoop(TEMPERATURE_LOOP, initial=22.0)
    peak = 0.0
    for _ in range(8 * 360):
        loop.step(10.0)
        assert 0.0 <= loop.output <= 1.0
        peak = max(peak, loop.value)
    assert peak < 37.5  # anti-windup: little overshoot after a long saturated climb
    assert loop.value == pytest.approx(37.0, abs=1e-3)


def test_setpoint_change_and_forced_excursion() -> None:
    reactor = Bioreactor(seed=0)
    reactor.set_setpoint("temperature", 36.0)
    reactor.step(2 * H)
    assert reactor.true_value("temperature") == pytest.approx(36.0, abs=0.01)
    reactor.force("temperature", 39.0, 1800.0)
    reactor.step(1800.0)
    assert reactor.true_value("temperature") > 37.5
    reactor.step(3 * H)
    assert reactor.true_value("temperature") == pytest.approx(36.0, abs=0.05)


def test_ph_falls_with_lactate_and_do_with_cells() -> None:
    reactor = Bioreactor(seed=0)
    reactor.seed(5e7, 100.0)
    ph0, do0 = reactor.true_value("ph"), reactor.true_value("dissolved_oxygen")
    assert 7.3 < ph0 < 7.5
    reactor.step(5 * 24 * H)
    assert reactor.true_value("ph") < ph0 - 0.1
    assert reactor.true_value("dissolved_oxygen") < do0 - 2


def test_readings_use_profile_names_units_and_mapping() -> None:
    reactor = Bioreactor(names={"cell_density": "chamber.viable_cell_density"})
    readings = {r.channel: r for r in reactor.readings()}
    assert readings["chamber.temperature"].unit == "Cel"
    assert readings["chamber.viable_cell_density"].unit == "{cells}/mL"
    assert len(readings) == len(VARIABLES)
    only = reactor.readings({"chamber.ph", "chamber.volume"})
    assert [r.channel for r in only] == ["chamber.ph", "chamber.volume"]


def test_params_from_profile_take_its_setpoints() -> None:
    params = BioreactorParams.from_profile(load_profile("cocoon"))
    assert params.loops["temperature"].setpoint == 37.0
    assert params.loops["co2"].setpoint == 5.0
    with pytest.raises(SimulationError, match="no control loop 'humidity'"):
        params.with_setpoints(humidity=95.0)


def run_readings(seed: int) -> list[float]:
    reactor = Bioreactor(seed=seed)
    reactor.seed(1e8, 150.0)
    values = []
    for _ in range(48):
        reactor.step(H)
        values += [r.value for r in reactor.readings()]
    return values


def test_deterministic_under_a_seed() -> None:
    assert run_readings(7) == run_readings(7)
    assert run_readings(7) != run_readings(8)


def test_bad_operations_are_refused() -> None:
    culture = Culture()
    culture.seed(1e6, 10.0)
    with pytest.raises(SimulationError, match="cannot remove 20 mL from 10 mL"):
        culture.remove(20.0)
    with pytest.raises(SimulationError, match="negative volume"):
        culture.feed(-1.0)
    with pytest.raises(SimulationError, match="time cannot go back"):
        culture.step(-1.0)
    with pytest.raises(SimulationError, match="unknown variable"):
        Bioreactor().true_value("humidity")


operations = st.lists(
    st.one_of(
        st.tuples(st.just("step"), st.floats(0, 5 * 86400)),
        st.tuples(st.just("feed"), st.floats(0, 200)),
        st.tuples(st.just("exchange"), st.floats(0, 1)),
        st.tuples(st.just("remove"), st.floats(0, 1)),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(
    cells=st.floats(1e3, 1e10),
    volume=st.floats(1, 500),
    ops=operations,
    params=st.builds(
        CultureParams,
        mu_max=st.floats(0, 0.2),
        lag=st.floats(0, 72),
        glucose_uptake=st.floats(0, 1e-9),
        death_rate=st.floats(0, 0.1),
    ),
)
def test_invariants_never_negative_and_volume_conserved(
    cells: float, volume: float, ops: list[tuple[str, float]], params: CultureParams
) -> None:
    culture = Culture(params)
    culture.seed(cells, volume)
    expected_volume = volume
    for op, amount in ops:
        s = culture.state
        if op == "step":
            culture.step(amount)
        elif op == "feed":
            glucose_mass = s.glucose * s.volume + Medium().glucose * amount
            culture.feed(amount)
            expected_volume += amount
            assert s.glucose * s.volume == pytest.approx(glucose_mass, rel=1e-9, abs=1e-9)
        elif op == "exchange":
            culture.exchange(amount * s.volume)
        else:
            taken = amount * s.volume
            culture.remove(taken)
            expected_volume -= taken
        s = culture.state
        assert s.volume == pytest.approx(expected_volume, rel=1e-9, abs=1e-9)
        for name in ("viable", "dead", "glucose", "lactate", "bicarbonate", "volume"):
            value = getattr(s, name)
            assert value >= 0, (name, value)
            assert math.isfinite(value), (name, value)
        assert 0.0 <= s.viability <= 1.0
