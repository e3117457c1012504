"""The Prodigy's process model: tubing set and bags, magnetic selection, activation,
transduction and expansion in the chamber, on top of the engine's Bioreactor.

Public anchors (Zhu et al. 2018, research/devices.md section 2): CD4/CD8 enrichment purity
98 +/- 4 %, recovery 55 +/- 6 %, transduction about 37 %, about 30-fold expansion over 13 days.
Everything else (input composition, volumes, flow rates, speeds, noise) is assumed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cellauto.schema import DeviceProfile
from cellauto.sim import Bioreactor, BioreactorParams, CultureParams

RADIUS_CM = 5.0  # assumed chamber radius for RCF
CENTRIFUGE_RPM = {"centrifugation": 2000.0, "mixing": 300.0}  # assumed
FLOW = 20.0  # mL/min while the pump runs (assumed)
UNITS = {
    "chamber.temperature": "Cel",
    "chamber.temperature_setpoint": "Cel",
    "chamber.co2": "%",
    "chamber.co2_setpoint": "%",
    "chamber.centrifuge_speed": "{rev}/min",
    "chamber.rcf": "[g]",
    "chamber.culture_volume": "mL",
    "fluidics.buffer_bag_volume": "mL",
    "fluidics.medium_bag_volume": "mL",
    "fluidics.target_bag_volume": "mL",
    "fluidics.non_target_bag_volume": "mL",
    "fluidics.waste_bag_volume": "mL",
    "pump.flow_rate": "mL/min",
    "pump.line_pressure": "kPa",
    "in_process_control.glucose": "mmol/L",
    "in_process_control.cell_concentration": "{cells}/mL",
    "in_process_control.total_cells": "{cells}",
    "in_process_control.viability": "%",
}
"""Every numeric channel and its unit (as the profile declares)."""


def _clip(x: float, low: float, high: float) -> float:
    return max(low, min(high, x))


@dataclass
class Bags:
    """Bag volumes in mL."""

    buffer: float = 0.0
    medium: float = 0.0
    target: float = 0.0
    non_target: float = 0.0
    waste: float = 0.0


@dataclass
class Selection:
    """The outcome of a magnetic selection."""

    input_cells: float
    input_targets: float
    target_fraction_cells: float
    non_target_fraction_cells: float
    recovery: float
    purity: float


@dataclass
class ProcessState:
    """Discrete state of the machine besides the chamber."""

    mode: str = "idle"
    door_closed: bool = True
    separation: str = "idle"
    magnet_engaged: bool = False
    tubing_set: str = "none"
    air_detected: bool = False
    pump_on: bool = False
    pressure_offset: float = 0.0
    bags: Bags = field(default_factory=Bags)
    ipc: dict[str, float] = field(default_factory=dict)


class ProdigyProcess:
    """Chamber (Bioreactor) plus bags, selection and culture bookkeeping; time in seconds."""

    def __init__(self, profile: DeviceProfile, seed: int) -> None:
        self.rng = random.Random(f"prodigy-process:{seed}")
        self.noise = random.Random(f"prodigy-noise:{seed}")  # kept apart: reads vary in number
        culture = CultureParams(mu_max=self.rng.gauss(0.0175, 0.0008), lag=30.0)
        params = BioreactorParams.from_profile(profile, base=BioreactorParams(culture=culture))
        self.reactor = Bioreactor(params, seed=self.rng.randrange(2**31))
        self.state = ProcessState()
        self.selection: Selection | None = None
        self.seeded = 0.0
        self.transduction: float | None = None
        self.harvested: float | None = None
        self.harvest_viability: float | None = None
        self.results: dict[str, tuple[float, str]] = {}

    # --- values ---------------------------------------------------------------------------

    def advance_to(self, t: float) -> None:
        self.reactor.advance_to(t)

    def numeric(self, channel: str) -> float | None:
        """The channel's measured value now (with noise); None if it has none yet."""
        s, r, rng = self.state, self.reactor, self.noise
        match channel:
            case "chamber.temperature":
                return r.loops["temperature"].value + rng.gauss(0, 0.02)
            case "chamber.temperature_setpoint":
                return r.loops["temperature"].setpoint
            case "chamber.co2":
                return max(0.0, r.loops["co2"].value + rng.gauss(0, 0.02))
            case "chamber.co2_setpoint":
                return r.loops["co2"].setpoint
            case "chamber.centrifuge_speed":
                rpm = CENTRIFUGE_RPM.get(s.mode, 0.0)
                return rpm + (rng.gauss(0, 5) if rpm else 0.0)
            case "chamber.rcf":
                rpm = CENTRIFUGE_RPM.get(s.mode, 0.0)
                return 1.118e-5 * RADIUS_CM * rpm * rpm
            case "chamber.culture_volume":
                return r.culture.state.volume
            case "pump.flow_rate":
                return FLOW + rng.gauss(0, 0.2) if s.pump_on else 0.0
            case "pump.line_pressure":
                base = 40.0 + rng.gauss(0, 1.0) if s.pump_on else rng.gauss(0, 0.3)
                return base + s.pressure_offset
            case _ if channel.startswith("fluidics.") and channel.endswith("_bag_volume"):
                bag = channel.removeprefix("fluidics.").removesuffix("_bag_volume")
                return float(getattr(s.bags, bag))
            case _ if channel.startswith("in_process_control."):
                return s.ipc.get(channel.removeprefix("in_process_control."))
        return None

    def text(self, channel: str) -> str | bool | None:
        """A text or boolean channel's value now."""
        s = self.state
        values: dict[str, str | bool] = {
            "chamber.mode": s.mode,
            "chamber.door_closed": s.door_closed,
            "separation_column.status": s.separation,
            "separation_column.magnet_engaged": s.magnet_engaged,
            "fluidics.tubing_set": s.tubing_set,
            "fluidics.air_detected": s.air_detected,
        }
        return values.get(channel)

    # --- what steps do ----------------------------------------------------------------------

    def install(self, tubing_set: str) -> None:
        self.state.tubing_set = tubing_set
        self.state.bags = Bags(buffer=3000.0, medium=3000.0 if tubing_set == "TS520" else 0.0)

    def load_starting_material(self, program: str, params: dict[str, float]) -> None:
        """The apheresis product (assumed composition: 1e10 white cells, 45 % CD4/CD8 T cells
        for TCT; for CD34, 1 % CD34+ cells)."""
        rng = self.rng
        if program == "CD34":
            cells = params.get("input_leukocytes", rng.uniform(1e10, 3e10))
            targets = params.get("input_cd34_cells", cells * rng.uniform(0.005, 0.015))
        else:
            cells = rng.uniform(0.8e10, 1.2e10)
            targets = cells * rng.uniform(0.40, 0.50)
        self.selection = Selection(cells, targets, 0.0, 0.0, 0.0, 0.0)
        self.state.bags.non_target = 0.0

    def separate(self) -> Selection:
        """Magnetic selection: recovery 55 +/- 6 %, purity 98 +/- 4 % (Zhu 2018, capped)."""
        sel = self.selection or Selection(1e10, 4.5e9, 0, 0, 0, 0)
        recovery = _clip(self.rng.gauss(0.55, 0.06), 0.30, 0.80)
        purity = _clip(self.rng.gauss(0.98, 0.04), 0.80, 0.999)
        targets = sel.input_targets * recovery
        fraction = targets / purity
        sel.recovery, sel.purity = recovery, purity
        sel.target_fraction_cells = fraction
        sel.non_target_fraction_cells = max(0.0, sel.input_cells - fraction)
        self.selection = sel
        bags = self.state.bags
        bags.target, bags.non_target = 100.0, 400.0
        bags.buffer = max(0.0, bags.buffer - 900.0)
        bags.waste += 400.0
        self.results |= {
            "input_cells": (sel.input_cells, "{cells}"),
            "target_fraction_cells": (fraction, "{cells}"),
            "non_target_fraction_cells": (sel.non_target_fraction_cells, "{cells}"),
            "recovery": (100.0 * recovery, "%"),
            "purity": (100.0 * purity, "%"),
        }
        return sel

    def activate(self, starting_cells: float, volume: float = 70.0) -> None:
        """Seed the chamber with the enriched T cells (TransAct activation)."""
        available = self.selection.target_fraction_cells if self.selection else starting_cells
        self.seeded = min(starting_cells, available)
        self.reactor.seed(self.seeded, volume)
        self.state.bags.medium = max(0.0, self.state.bags.medium - volume)
        self.state.bags.target = 0.0
        self.state.mode = "culture"

    def transduce(self) -> float:
        """Lentiviral transduction: about 37 % (Zhu 2018)."""
        self.transduction = _clip(self.rng.gauss(0.37, 0.05), 0.05, 0.9)
        self.results["transduction"] = (100.0 * self.transduction, "%")
        return self.transduction

    def feed(self, target_volume: float) -> float:
        """One automated feed: top up to `target_volume`, then exchange 30 % of the medium.
        Returns the medium used, mL."""
        culture = self.reactor.culture.state
        if culture.volume <= 0:
            return 0.0
        bags = self.state.bags
        room = max(0.0, target_volume - culture.volume)
        if room > 1.0:
            used = min(room, 60.0, bags.medium)
            self.reactor.feed(used)
        else:
            used = min(0.3 * culture.volume, bags.medium)
            self.reactor.exchange(used, cell_retention=0.98)
            bags.waste += used
        bags.medium -= used
        return used

    def take_sample(self, volume: float = 2.0) -> dict[str, float]:
        """Draw an in-process sample: off-line count, viability and glucose (with noise)."""
        c = self.reactor.culture.state
        rng = self.noise
        concentration = max(0.0, c.viable * (1 + rng.gauss(0, 0.05)))
        self.state.ipc = {
            "glucose": max(0.0, c.glucose + rng.gauss(0, 0.1)),
            "cell_concentration": concentration,
            "total_cells": concentration * c.volume,
            "viability": _clip(100.0 * c.viability + rng.gauss(0, 0.5), 0.0, 100.0),
        }
        if c.volume > volume:
            self.reactor.culture.remove(volume)
        return dict(self.state.ipc)

    def enter_ipc(self, values: dict[str, float]) -> None:
        """An operator-entered in-process result."""
        self.state.ipc.update(values)

    def harvest(self) -> None:
        """Final product: harvest the chamber."""
        c = self.reactor.culture.state
        self.harvest_viability = 100.0 * c.viability
        self.harvested = self.reactor.harvest() if c.volume > 0 else 0.0
        self.state.mode = "idle"
        self.results |= {
            "final_cells": (self.harvested, "{cells}"),
            "final_viability": (self.harvest_viability, "%"),
        }
        if self.seeded > 0:
            self.results["fold_expansion"] = (self.harvested / self.seeded, "1")
        if self.transduction is not None:
            self.results["transduced_cells"] = (self.harvested * self.transduction, "{cells}")
