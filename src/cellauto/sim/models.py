"""Process models: a culture (cells, glucose, lactate, volume) and its controlled environment.

Every default below is an *assumption*: a generic mammalian/T-cell culture in RPMI-like medium,
chosen to give realistic shapes (a lag of about a day, doubling in about a day, a plateau when
glucose runs out, death after), not any vendor's numbers. Replace them from the device profile or
explicit parameters. Time in the API is seconds; rates in the parameters are per hour, as papers
give them.

The integrators are exact or semi-analytic over each sub-step, so a step of hours costs a few
sub-steps and stays stable: cells grow exponentially at the sub-step's rates, and the PI loops
use the closed-form solution of a first-order plant under a PI controller tuned by pole-zero
cancellation (lambda tuning), falling back to short exact-plant steps only while the actuator
saturates.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field, replace

from cellauto.errors import SimulationError
from cellauto.schema import DeviceProfile

_HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of one channel, in the channel's unit."""

    channel: str
    value: float
    unit: str


@dataclass(frozen=True, slots=True)
class Medium:
    """Composition of fresh medium or feed (assumed RPMI-1640-like: 2 g/L glucose, 2 g/L NaHCO3)."""

    glucose: float = 11.1  # mmol/L
    lactate: float = 0.0  # mmol/L
    bicarbonate: float = 23.8  # mmol/L


@dataclass(frozen=True, slots=True)
class CultureParams:
    """Kinetic parameters of the culture (all assumed, generic T-cell-like)."""

    mu_max: float = 0.03  # 1/h, doubling about 23 h
    lag: float = 24.0  # h, when growth reaches half its rate (logistic switch, width lag/6)
    monod_glucose: float = 0.5  # mmol/L, half-saturation constant of growth and uptake
    max_density: float = 1.5e7  # {cells}/mL, logistic capacity
    death_rate: float = 0.001  # 1/h with glucose
    starvation_death_rate: float = 0.04  # 1/h extra when glucose is exhausted
    starvation_glucose: float = 0.1  # mmol/L, below which starvation deaths set in
    glucose_uptake: float = 4e-11  # mmol/{cell}/h at saturating glucose (0.04 pmol/cell/h)
    lactate_yield: float = 1.6  # mol lactate per mol glucose taken up
    oxygen_uptake: float = 3e-11  # mmol/{cell}/h
    max_step: float = 300.0  # s, longest integration sub-step


@dataclass(slots=True)
class CultureState:
    """What the culture is now: densities per mL, concentrations in mmol/L, volume in mL."""

    viable: float = 0.0  # {cells}/mL
    dead: float = 0.0  # {cells}/mL
    glucose: float = 0.0
    lactate: float = 0.0
    bicarbonate: float = 0.0
    volume: float = 0.0
    age: float = 0.0  # s since seeding, drives the lag phase

    @property
    def viability(self) -> float:
        """Viable fraction 0..1 (1 when there are no cells)."""
        total = self.viable + self.dead
        return 1.0 if total <= 0 else self.viable / total

    @property
    def total_viable(self) -> float:
        """Viable cells in the vessel."""
        return self.viable * self.volume


class Culture:
    """Cells in medium: lag, Monod/logistic growth, death, glucose uptake, lactate, volume."""

    def __init__(self, params: CultureParams | None = None, medium: Medium | None = None) -> None:
        self.params = params or CultureParams()
        self.medium = medium or Medium()
        self.state = CultureState()
        p = self.params
        self._mu = p.mu_max / _HOUR
        self._lag = p.lag * _HOUR
        self._lag_rate = 6.0 / self._lag if self._lag > 0 else 0.0

    def seed(self, cells: float, volume: float, medium: Medium | None = None) -> None:
        """Start a culture: `cells` viable cells in `volume` mL of fresh medium."""
        if cells < 0 or volume <= 0:
            raise SimulationError(f"cannot seed {cells:g} cells in {volume:g} mL")
        m = medium or self.medium
        self.state = CultureState(
            viable=cells / volume,
            glucose=m.glucose,
            lactate=m.lactate,
            bicarbonate=m.bicarbonate,
            volume=volume,
        )

    def feed(self, volume: float, medium: Medium | None = None) -> None:
        """Add `volume` mL of medium (or a feed): dilutes cells, mixes concentrations."""
        if volume < 0:
            raise SimulationError(f"cannot feed a negative volume ({volume:g} mL)")
        if volume == 0:
            return
        m = medium or self.medium
        s = self.state
        total = s.volume + volume
        keep = s.volume / total
        add = volume / total
        s.viable *= keep
        s.dead *= keep
        s.glucose = s.glucose * keep + m.glucose * add
        s.lactate = s.lactate * keep + m.lactate * add
        s.bicarbonate = s.bicarbonate * keep + m.bicarbonate * add
        s.volume = total

    def remove(self, volume: float, *, cell_fraction: float = 1.0) -> float:
        """Take `volume` mL out; `cell_fraction` of the cells it would carry leave with it
        (0 for supernatant above settled cells). Returns the viable cells removed."""
        s = self.state
        if not 0 <= volume <= s.volume + 1e-9:
            raise SimulationError(f"cannot remove {volume:g} mL from {s.volume:g} mL")
        if not 0 <= cell_fraction <= 1:
            raise SimulationError(f"cell_fraction must be within 0..1, not {cell_fraction:g}")
        volume = min(volume, s.volume)
        remaining = s.volume - volume
        viable_out = s.viable * volume * cell_fraction
        dead_out = s.dead * volume * cell_fraction
        if remaining <= 0:
            s.viable = s.dead = 0.0
        else:
            s.viable = (s.viable * s.volume - viable_out) / remaining
            s.dead = (s.dead * s.volume - dead_out) / remaining
        s.volume = remaining
        return viable_out

    def exchange(
        self, volume: float, medium: Medium | None = None, *, cell_retention: float = 1.0
    ) -> None:
        """Medium exchange: remove `volume` mL (keeping `cell_retention` of its cells), add the
        same volume fresh."""
        self.remove(volume, cell_fraction=1.0 - cell_retention)
        self.feed(volume, medium)

    def step(self, dt: float) -> None:
        """Advance `dt` seconds, in sub-steps of at most `params.max_step`."""
        if dt < 0:
            raise SimulationError(f"time cannot go back ({dt:g} s)")
        if self.state.volume <= 0:
            self.state.age += dt
            return
        n = max(1, math.ceil(dt / self.params.max_step))
        h = dt / n
        for _ in range(n):
            self._substep(h)

    def _substep(self, h: float) -> None:
        p, s = self.params, self.state
        x = s.viable
        glc = s.glucose
        monod = glc / (glc + p.monod_glucose) if glc > 0 else 0.0
        if self._lag_rate == 0.0:
            alpha = 1.0
        else:
            # lag phase: growth switches on along a logistic curve, half-way at `lag`
            alpha = 1.0 / (1.0 + math.exp(min(700.0, (self._lag - s.age) * self._lag_rate)))
        room = 1.0 - x / p.max_density
        mu = self._mu * alpha * monod * (room if room > 0 else 0.0)
        starving = p.starvation_glucose / (glc + p.starvation_glucose) if glc > 0 else 1.0
        kd = (p.death_rate + p.starvation_death_rate * starving) / _HOUR
        g = mu - kd
        gh = g * h
        # cell-seconds per mL over the sub-step (integral of x)
        integral = x * h if abs(gh) < 1e-9 else x * math.expm1(gh) / g
        s.viable = x * math.exp(gh)
        s.dead += kd * integral
        uptake = p.glucose_uptake / _HOUR * monod * integral * 1000.0
        if uptake > glc:
            uptake = glc
        s.glucose = glc - uptake
        lactate = p.lactate_yield * uptake
        s.lactate += lactate
        s.bicarbonate = max(0.0, s.bicarbonate - lactate)
        s.age += h


@dataclass(frozen=True, slots=True)
class LoopParams:
    """A first-order plant under PI control (lambda-tuned).

    Plant: ``tau * dy/dt = ambient - y + gain * u`` with ``u`` in ``[u_min, u_max]``.
    The controller makes the unsaturated closed loop settle with time constant `closed_loop`.
    """

    setpoint: float
    ambient: float
    tau: float  # s
    gain: float  # y units per unit actuator output
    closed_loop: float  # s
    u_min: float = 0.0
    u_max: float = 1.0
    period: float = 5.0  # s, control period while saturated


TEMPERATURE_LOOP = LoopParams(setpoint=37.0, ambient=22.0, tau=1800, gain=25.0, closed_loop=600)
"""Assumed chamber temperature loop: heater only, 30 min plant, 10 min closed loop."""
CO2_LOOP = LoopParams(setpoint=5.0, ambient=0.04, tau=600, gain=20.0, closed_loop=300)
"""Assumed CO2 loop: CO2 valve into the gas space."""
O2_LOOP = LoopParams(
    setpoint=20.9, ambient=20.9, tau=600, gain=20.0, closed_loop=300, u_min=-1.0, u_max=0.0
)
"""Assumed O2 loop: nitrogen flush lowers O2 below air (hypoxic culture)."""


class ControlLoop:
    """One controlled variable: plant value, PI state, setpoint, and forced-output faults."""

    def __init__(self, params: LoopParams, initial: float | None = None) -> None:
        if params.tau <= 0 or params.closed_loop <= 0 or params.gain == 0:
            raise SimulationError(f"loop needs positive tau/closed_loop and a gain: {params}")
        self.params = params
        self.setpoint = params.setpoint
        self.value = params.setpoint if initial is None else initial
        # integral action in plant units; at equilibrium it equals setpoint - ambient
        self.integral = (
            params.setpoint - params.ambient if initial is None else self._clamp_integral(0.0)
        )
        self._forced_u: float | None = None
        self._forced_left = 0.0

    @property
    def output(self) -> float:
        """Actuator output now, within [u_min, u_max]."""
        if self._forced_u is not None:
            return self._forced_u
        return self._clamp(self._u_unsat(self.value, self.integral))

    def force(self, target: float, duration: float) -> None:
        """Actuator fault: drive the plant toward `target` open-loop for `duration` seconds."""
        p = self.params
        self._forced_u = self._clamp((target - p.ambient) / p.gain)
        self._forced_left = duration

    def release(self) -> None:
        """End an actuator fault now: closed-loop control resumes."""
        self._forced_u = None
        self._forced_left = 0.0

    def step(self, dt: float) -> None:
        """Advance `dt` seconds."""
        while dt > 0:
            if self._forced_u is not None:
                h = min(dt, self._forced_left)
                self.value = self._plant(self.value, self._forced_u, h)
                self._forced_left -= h
                if self._forced_left <= 0:
                    self._forced_u = None
                dt -= h
                continue
            h = min(dt, 10 * self.params.closed_loop)
            if not self._exact(h):
                h = min(dt, self.params.period)
                self._saturated(h)
            dt -= h

    def _u_unsat(self, y: float, integral: float) -> float:
        p = self.params
        return (p.tau / p.closed_loop * (self.setpoint - y) + integral) / p.gain

    def _clamp(self, u: float) -> float:
        p = self.params
        return p.u_min if u < p.u_min else p.u_max if u > p.u_max else u

    def _clamp_integral(self, integral: float) -> float:
        p = self.params
        lo, hi = sorted((p.u_min * p.gain, p.u_max * p.gain))
        return min(hi, max(lo, integral))

    def _plant(self, y: float, u: float, h: float) -> float:
        p = self.params
        steady = p.ambient + p.gain * u
        return steady + (y - steady) * math.exp(-h / p.tau)

    def _exact(self, h: float) -> bool:
        """Closed-form step of the unsaturated loop; False (nothing changed) if it saturates."""
        p = self.params
        tol = 1e-9 * (p.u_max - p.u_min)
        if not p.u_min - tol <= self._u_unsat(self.value, self.integral) <= p.u_max + tol:
            return False
        r, lam, tau = self.setpoint, p.closed_loop, p.tau
        e0 = r - self.value
        d0 = (r - p.ambient) - self.integral
        # (e, d) = A (1, tau/lam) e^(-t/tau) + B (1, 1) e^(-t/lam)
        ratio = tau / lam
        if abs(ratio - 1.0) < 1e-9:
            ratio = 1.0 + 1e-6
        a = (d0 - e0) / (ratio - 1.0)
        b = e0 - a
        fa, fb = math.exp(-h / tau), math.exp(-h / lam)
        e1 = a * fa + b * fb
        d1 = a * ratio * fa + b * fb
        value, integral = r - e1, (r - p.ambient) - d1
        if not p.u_min - tol <= self._u_unsat(value, integral) <= p.u_max + tol:
            return False
        self.value, self.integral = value, integral
        return True

    def _saturated(self, h: float) -> None:
        u_raw = self._u_unsat(self.value, self.integral)
        u = self._clamp(u_raw)
        error = self.setpoint - self.value
        # conditional integration: integrate only when it drives the output out of saturation
        if u == u_raw or (u_raw > u) != (error > 0):
            self.integral = self._clamp_integral(
                self.integral + h * error / self.params.closed_loop
            )
        self.value = self._plant(self.value, u, h)


@dataclass(frozen=True, slots=True)
class SensorNoise:
    """Gaussian sensor noise: standard deviations (assumed) per model variable; cell counts are
    relative."""

    temperature: float = 0.02  # Cel
    co2: float = 0.02  # %
    o2: float = 0.05  # %
    ph: float = 0.005
    dissolved_oxygen: float = 0.5  # %{air_saturation}
    glucose: float = 0.05  # mmol/L
    lactate: float = 0.05  # mmol/L
    cell_density: float = 0.03  # relative
    total_cells: float = 0.03  # relative
    viability: float = 0.5  # %
    volume: float = 0.1  # mL


VARIABLES: dict[str, str] = {
    "temperature": "Cel",
    "co2": "%",
    "o2": "%",
    "ph": "[pH]",
    "dissolved_oxygen": "%{air_saturation}",
    "glucose": "mmol/L",
    "lactate": "mmol/L",
    "cell_density": "{cells}/mL",
    "total_cells": "{cells}",
    "viability": "%",
    "volume": "mL",
}
"""Every variable a Bioreactor reports, with its canonical UCUM unit."""

_RELATIVE_NOISE = frozenset({"cell_density", "total_cells"})
_NON_NEGATIVE = frozenset(VARIABLES) - {"temperature"}


@dataclass(frozen=True, slots=True)
class BioreactorParams:
    """Everything a Bioreactor is built from (defaults assumed; see the module docstring)."""

    culture: CultureParams = field(default_factory=CultureParams)
    medium: Medium = field(default_factory=Medium)
    loops: Mapping[str, LoopParams] = field(
        default_factory=lambda: {"temperature": TEMPERATURE_LOOP, "co2": CO2_LOOP, "o2": O2_LOOP}
    )
    noise: SensorNoise = field(default_factory=SensorNoise)
    kla: float = 10.0  # 1/h, oxygen transfer through the gas-permeable wall (assumed)
    oxygen_saturation: float = 0.21  # mmol/L at 100 % air saturation, 37 Cel

    def with_setpoints(self, **setpoints: float) -> BioreactorParams:
        """A copy with loop setpoints changed (``temperature=36.5``)."""
        loops = dict(self.loops)
        for name, value in setpoints.items():
            if name not in loops:
                raise SimulationError(f"no control loop {name!r}; loops: {', '.join(loops)}")
            loops[name] = replace(loops[name], setpoint=value)
        return replace(self, loops=loops)

    @classmethod
    def from_profile(
        cls, profile: DeviceProfile, unit: str = "chamber", base: BioreactorParams | None = None
    ) -> BioreactorParams:
        """Defaults with the setpoints the profile declares on ``<unit>.<loop>_setpoint``."""
        params = base or cls()
        channels = profile.channels()
        found = {}
        for loop in params.loops:
            channel = channels.get(f"{unit}.{loop}_setpoint")
            if channel is not None and channel.setpoint is not None:
                found[loop] = channel.setpoint.value
        return params.with_setpoints(**found)


class Bioreactor:
    """A culture in a controlled environment, read through noisy sensors.

    ``advance_to(t)`` / ``step(dt)`` move model time (seconds since creation); ``readings()``
    gives every variable as (channel, value, unit), named ``<prefix>.<variable>`` unless `names`
    maps a variable to another channel name. Deterministic for a given `seed` and call sequence.
    """

    def __init__(
        self,
        params: BioreactorParams | None = None,
        *,
        seed: int | None = 0,
        prefix: str = "chamber",
        names: Mapping[str, str] | None = None,
        initial: Mapping[str, float] | None = None,
    ) -> None:
        self.params = params or BioreactorParams()
        self.culture = Culture(self.params.culture, self.params.medium)
        initial = initial or {}
        unknown = set(initial) - set(self.params.loops)
        if unknown:
            raise SimulationError(f"initial values for unknown loops: {', '.join(sorted(unknown))}")
        self.loops = {
            name: ControlLoop(lp, initial.get(name)) for name, lp in self.params.loops.items()
        }
        self.time = 0.0
        self.rng = random.Random(seed)
        self.names = {v: f"{prefix}.{v}" for v in VARIABLES} | dict(names or {})
        unknown = set(self.names) - set(VARIABLES)
        if unknown:
            raise SimulationError(f"names for unknown variables: {', '.join(sorted(unknown))}")

    # --- time -----------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Advance `dt` seconds of model time."""
        if dt < 0:
            raise SimulationError(f"time cannot go back ({dt:g} s)")
        if dt == 0:
            return
        for loop in self.loops.values():
            loop.step(dt)
        self.culture.step(dt)
        self.time += dt

    def advance_to(self, t: float) -> None:
        """Advance to model time `t` (seconds); a time in the past is a no-op."""
        if t > self.time:
            self.step(t - self.time)

    # --- operations (what program steps do) -----------------------------------------------

    def seed(self, cells: float, volume: float, medium: Medium | None = None) -> None:
        """Seed `cells` viable cells in `volume` mL of medium."""
        self.culture.seed(cells, volume, medium)

    def feed(self, volume: float, medium: Medium | None = None) -> None:
        """Add `volume` mL of medium or feed."""
        self.culture.feed(volume, medium)

    def exchange(
        self, volume: float, medium: Medium | None = None, *, cell_retention: float = 1.0
    ) -> None:
        """Replace `volume` mL of spent medium with fresh medium."""
        self.culture.exchange(volume, medium, cell_retention=cell_retention)

    def harvest(self, volume: float | None = None) -> float:
        """Remove `volume` mL (all if None) with its cells; returns the viable cells harvested."""
        return self.culture.remove(self.culture.state.volume if volume is None else volume)

    def set_setpoint(self, loop: str, value: float) -> None:
        """Change a loop's setpoint."""
        self._loop(loop).setpoint = value

    def force(self, loop: str, target: float, duration: float) -> None:
        """Actuator fault on `loop`: drive it toward `target` open-loop for `duration` s."""
        self._loop(loop).force(target, duration)

    # --- values ---------------------------------------------------------------------------

    def true_value(self, variable: str) -> float:
        """The model's noise-free value of `variable` (one of `VARIABLES`)."""
        s = self.culture.state
        match variable:
            case "temperature" | "co2" | "o2":
                return self._loop(variable).value
            case "ph":
                # Henderson-Hasselbalch over the bicarbonate buffer; pCO2 in mmHg at 37 Cel
                pco2 = max(1e-3, self._gas("co2", 5.0)) * (760.0 - 47.0) / 100.0
                return 6.1 + math.log10(max(0.1, s.bicarbonate) / (0.0307 * pco2))
            case "dissolved_oxygen":
                p = self.params
                our = p.culture.oxygen_uptake * s.viable * 1000.0  # mmol/L/h
                saturation = 100.0 * self._gas("o2", 20.9) / 20.9
                return max(0.0, saturation - 100.0 * our / (p.kla * p.oxygen_saturation))
            case "glucose":
                return s.glucose
            case "lactate":
                return s.lactate
            case "cell_density":
                return s.viable
            case "total_cells":
                return s.total_viable
            case "viability":
                return 100.0 * s.viability
            case "volume":
                return s.volume
        raise SimulationError(f"unknown variable {variable!r}; known: {', '.join(VARIABLES)}")

    def read(self, variable: str, *, noisy: bool = True) -> Reading:
        """One variable as a Reading, with sensor noise unless `noisy` is False."""
        value = self.true_value(variable)
        if noisy:
            sd = getattr(self.params.noise, variable)
            if sd > 0:
                scale = abs(value) if variable in _RELATIVE_NOISE else 1.0
                value += self.rng.gauss(0.0, sd * scale)
            if variable in _NON_NEGATIVE and value < 0:
                value = 0.0
            if variable == "viability":
                value = min(100.0, value)
        return Reading(self.names[variable], value, VARIABLES[variable])

    def readings(
        self, channels: Collection[str] | None = None, *, noisy: bool = True
    ) -> list[Reading]:
        """Every variable (or those whose channel is in `channels`) as Readings."""
        return [
            self.read(v, noisy=noisy)
            for v in self._variables()
            if channels is None or self.names[v] in channels
        ]

    def _variables(self) -> Iterator[str]:
        for v in VARIABLES:
            if v in ("temperature", "co2", "o2") and v not in self.loops:
                continue
            yield v

    def _gas(self, loop: str, default: float) -> float:
        found = self.loops.get(loop)
        return default if found is None else found.value

    def _loop(self, name: str) -> ControlLoop:
        try:
            return self.loops[name]
        except KeyError:
            raise SimulationError(
                f"no control loop {name!r}; loops: {', '.join(self.loops)}"
            ) from None
