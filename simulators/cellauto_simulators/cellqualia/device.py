"""The CellQualia process model (every number assumed; see docs/devices/cellqualia.md).

An isolator (pressure cascade, H2O2 decontamination cycle, glove ports, pass box), an incubator
(temperature, O2, CO2, pH drifting between feeds) and an imaging unit measuring confluency and a
morphology score of the culture, which grows logistically between passages. A seeded fraction
of runs drift: their morphology score falls passage by passage, and the imaging unit flags it
(`morphology_anomaly`) before the culture fails."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

from cellauto.schema import DeviceProfile, PropertyValue, Q
from cellauto.sim.clock import Clock
from cellauto.sim.families.lads import SimulatedLadsDevice, Value
from cellauto.sim.runner import StepContext
from cellauto.sim.truth import GroundTruth

GROWTH_PER_HOUR = 0.03
"""Confluency growth rate (1/h, logistic): about 5 days from 10 % to 80 % (assumed)."""
SEEDED_CONFLUENCY = 10.0
CELLS_AT_FULL_CONFLUENCY = 2.0e7
"""Cells in the vessel at 100 % confluency (assumed: a multilayer vessel of ~1,000 cm2)."""
DRIFT_PER_PASSAGE = 0.15
"""How much a drifting culture's morphology score falls per passage (assumed)."""
MORPHOLOGY_LIMIT = 0.5


class SimulatedCellQualia(SimulatedLadsDevice):
    """The device behind the LADS server."""

    tick = 300.0
    serial = "CQ-SIM-0001"

    def __init__(
        self, profile: DeviceProfile, clock: Clock, truth: GroundTruth, seed: int = 0
    ) -> None:
        super().__init__(profile, clock, truth, seed)
        self.rng = random.Random(seed)
        self.drifting = self.rng.random() < 0.3
        self.decontamination = "not_decontaminated"
        self.doors_sealed = True
        self.passages = 0
        self.interventions = 0
        self.images = 0
        self.medium = 4000.0
        self.ph = 7.35
        self.morphology = 0.92
        self.seeded_at: float | None = None
        self.flagged = False
        self.step_start = {
            "load_materials": self._load,
            "decontaminate": self._decontaminate,
            "seed": self._seed,
            "feed": self._feed,
            "passage": self._passage,
        }
        self.step_end = {"decontaminate": self._decontaminated, "load_materials": self._sealed}

    # -- steps -------------------------------------------------------------------------------

    def _load(self, ctx: StepContext) -> None:
        self.doors_sealed = False
        self.interventions += 1

    def _sealed(self, ctx: StepContext) -> None:
        self.doors_sealed = True

    def _decontaminate(self, ctx: StepContext) -> None:
        self.decontamination = "running"

    def _decontaminated(self, ctx: StepContext) -> None:
        self.decontamination = "complete"

    def _seed(self, ctx: StepContext) -> None:
        self.seeded_at = self.clock.monotonic()
        self.interventions += 1

    def _feed(self, ctx: StepContext) -> None:
        self.medium = max(self.medium - 250.0, 0.0)
        self.ph = 7.35

    def _passage(self, ctx: StepContext) -> None:
        self.passages += 1
        self.seeded_at = self.clock.monotonic()
        if self.drifting:
            self.morphology -= DRIFT_PER_PASSAGE
        if self.morphology < MORPHOLOGY_LIMIT + 0.1 and not self.flagged:
            self.flagged = True  # flagged while the score is still above its limit
            self.raise_alarm("morphology_anomaly")

    # -- model -------------------------------------------------------------------------------

    def confluency(self) -> float:
        if self.seeded_at is None:
            return 0.0
        hours = (self.clock.monotonic() - self.seeded_at) / 3600.0
        c0 = SEEDED_CONFLUENCY / 100.0
        value = 1.0 / (1.0 + (1.0 / c0 - 1.0) * math.exp(-GROWTH_PER_HOUR * hours))
        return 100.0 * value

    def values(self) -> Mapping[str, Value]:
        noise = self.rng.gauss
        confluency = self.confluency()
        if confluency > 0:
            self.images = int((self.clock.monotonic() - (self.seeded_at or 0)) // 21600) + 1
        return {
            "isolator.differential_pressure": 50.0 + noise(0, 2),
            "isolator.decontamination_state": self.decontamination,
            "isolator.glove_integrity": True,
            "isolator.door_sealed": self.doors_sealed,
            "incubator.temperature": 37.0 + noise(0, 0.05),
            "incubator.temperature_setpoint": 37.0,
            "incubator.o2": 21.0 + noise(0, 0.1),
            "incubator.o2_setpoint": 21.0,
            "incubator.co2": 5.0 + noise(0, 0.05),
            "incubator.co2_setpoint": 5.0,
            "incubator.ph": self.ph - 0.002 * confluency + noise(0, 0.01),
            "imaging.confluency": confluency,
            "imaging.morphology_score": max(self.morphology + noise(0, 0.01), 0.0),
            "imaging.images_captured": self.images,
            "handling.passage_number": self.passages,
            "handling.cell_count": CELLS_AT_FULL_CONFLUENCY * confluency / 100.0,
            "handling.viability": 95.0 + noise(0, 0.5),
            "handling.operator_interventions": self.interventions,
            "handling.medium_volume": self.medium,
        }

    def result_properties(self, outcome: str) -> dict[str, PropertyValue]:
        return {
            "passages": self.passages,
            "final_confluency": Q(round(self.confluency(), 2), "%"),
            "morphology_score": Q(round(self.morphology, 3), "1"),
            "morphology_flagged": self.flagged,
        }
