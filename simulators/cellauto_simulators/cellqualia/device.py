"""The CellQualia process model (every number assumed; see docs/devices/cellqualia.md).

An isolator (pressure cascade, H2O2 decontamination cycle, glove ports, pass box), an incubator
(temperature, O2, CO2, pH drifting between feeds) and an imaging unit measuring confluency and a
morphology score of the culture, which grows logistically between passages. A seeded fraction
of runs drift: their morphology score falls passage by passage, and the imaging unit flags it
(`morphology_anomaly`) before the culture fails."""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Mapping

from cellauto.errors import SimulationError
from cellauto.schema import DeviceProfile, ProgramRun, ProgramTemplate, PropertyValue, Q, Quantity
from cellauto.sim.clock import Clock
from cellauto.sim.families.lads import SimulatedLadsDevice, Value
from cellauto.sim.images import render_confluence
from cellauto.sim.runner import StepContext
from cellauto.sim.truth import GroundTruth

_log = logging.getLogger("cellauto.sim.cellqualia")

GROWTH_PER_HOUR = 0.03
"""Confluency growth rate (1/h, logistic): about 5 days from 10 % to 80 % (assumed)."""
CONFLUENT_DENSITY = 30000.0
"""Cells per cm2 at 100 % confluency (assumed): seeding 3,000 cells/cm2 covers 10 %."""
DEFAULT_SEEDING_DENSITY = 3000.0
CELLS_AT_FULL_CONFLUENCY = 2.0e7
"""Cells in the vessel at 100 % confluency (assumed: a multilayer vessel of ~1,000 cm2)."""
DRIFT_PER_PASSAGE = 0.15
"""How much a drifting culture's morphology score falls per passage (assumed)."""
MORPHOLOGY_LIMIT = 0.5
GASSING_PPM = 400.0
"""H2O2 in the enclosure during gassing (assumed; cycles of some hundred ppm are typical of
vapour-phase hydrogen peroxide, the value is not the device's)."""
AERATION_HALF_LIFE = 1200.0
"""Seconds for the H2O2 concentration to halve during aeration (assumed)."""


class SimulatedCellQualia(SimulatedLadsDevice):
    """The device behind the LADS server."""

    tick = 60.0
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
        self.seeded_confluency = 100.0 * DEFAULT_SEEDING_DENSITY / CONFLUENT_DENSITY
        self._aeration_from: float | None = None
        self.breached = False
        self.flagged = False
        self.h2o2 = 0.0
        self.gloves_ok = True
        self.harvests: list[tuple[str, float]] = []
        """(label, confluency %) of each culture imaged before it was passaged or harvested."""
        self.step_start = {
            "load_materials": self._load,
            "leak_test": self._leak_test,
            "decontaminate": self._decontaminate,
            "aerate": self._aerate,
            "seed": self._seed,
            "feed": self._feed,
            "passage": self._passage,
        }
        self.step_end = {
            "load_materials": self._sealed,
            "decontaminate": self._gassed,
            "aerate": self._aerated,
        }

    # -- the run's plan -----------------------------------------------------------------------

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        await super()._start_program(self.planned(template, parameters), parameters, run)

    def planned(
        self, template: ProgramTemplate, parameters: Mapping[str, PropertyValue]
    ) -> ProgramTemplate:
        """The steps this run executes: the template's, without the passages (and the
        expansions after them) beyond `passages`, each expansion ending when the culture reaches
        `passage_confluency` from the confluency `seeding_density` gives (the template's
        duration is the longest an expansion lasts)."""
        density = _number(parameters.get("seeding_density"), DEFAULT_SEEDING_DENSITY)
        self.seeded_confluency = min(100.0 * density / CONFLUENT_DENSITY, 99.0)
        passages = parameters.get("passages")
        keep = int(_number(passages, 0.0)) if passages is not None else len(template.steps)
        trigger = parameters.get("passage_confluency")
        expansion = self._hours_to(_number(trigger, 0.0)) * 3600.0 if trigger is not None else None
        steps = []
        seen = 0
        for step in template.steps:
            if step.unit_operation == "passage":
                seen += 1
            if seen > keep and step.unit_operation in ("passage", "feed"):
                continue
            longest = step.duration_seconds
            if step.unit_operation == "feed" and expansion is not None and longest is not None:
                seconds = max(min(expansion, longest), self.tick)
                step = step.model_copy(update={"duration": Quantity(value=seconds, unit="s")})
            steps.append(step)
        return template.model_copy(update={"steps": steps})

    def _hours_to(self, confluency: float) -> float:
        """Hours the logistic culture takes from its seeded confluency to `confluency` %."""
        c0, c1 = self.seeded_confluency / 100.0, min(max(confluency, 0.0), 99.9) / 100.0
        if c1 <= c0:
            return 0.0
        return math.log((c1 / (1.0 - c1)) / (c0 / (1.0 - c0))) / GROWTH_PER_HOUR

    # -- steps -------------------------------------------------------------------------------

    def _load(self, ctx: StepContext) -> None:
        self.doors_sealed = False
        self.interventions += 1

    def _sealed(self, ctx: StepContext) -> None:
        self.doors_sealed = True

    def _leak_test(self, ctx: StepContext) -> None:
        self.gloves_ok = True

    def _decontaminate(self, ctx: StepContext) -> None:
        self.decontamination = "running"
        self.h2o2 = GASSING_PPM

    def _gassed(self, ctx: StepContext) -> None:
        self.decontamination = "aerating"

    def _aerate(self, ctx: StepContext) -> None:
        self.decontamination = "aerating"
        self._aeration_from = self.clock.monotonic()

    def _aerated(self, ctx: StepContext) -> None:
        self.decontamination = "complete"
        self.h2o2 = 0.5

    def _seed(self, ctx: StepContext) -> None:
        self.seeded_at = self.clock.monotonic()
        self.interventions += 1

    def _feed(self, ctx: StepContext) -> None:
        self.medium = max(self.medium - 250.0, 0.0)
        self.ph = 7.35

    def _passage(self, ctx: StepContext) -> None:
        self.harvests.append((f"passage-{self.passages + 1}", self.confluency()))
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
        c0 = self.seeded_confluency / 100.0
        value = 1.0 / (1.0 + (1.0 / c0 - 1.0) * math.exp(-GROWTH_PER_HOUR * hours))
        return 100.0 * value

    # -- isolator breaches (faults: glove_breach@..., isolator_pressure_loss@... or leak@...) --

    def raise_alarm(self, code: str) -> str:
        if code == "glove_breach":
            self.gloves_ok = False
        elif code == "isolator_pressure_loss":
            self.breached = True
        return super().raise_alarm(code)

    def clear_alarm(self, code: str) -> None:
        if code == "glove_breach":
            self.gloves_ok = True
        elif code == "isolator_pressure_loss":
            self.breached = False
        super().clear_alarm(code)

    def h2o2_now(self) -> float:
        if self.decontamination == "aerating" and self._aeration_from is not None:
            elapsed = self.clock.monotonic() - self._aeration_from
            return float(GASSING_PPM * 0.5 ** (elapsed / AERATION_HALF_LIFE))
        return self.h2o2

    def values(self) -> Mapping[str, Value]:
        noise = self.rng.gauss
        confluency = self.confluency()
        if confluency > 0:
            self.images = int((self.clock.monotonic() - (self.seeded_at or 0)) // 21600) + 1
        return {
            "isolator.differential_pressure": (2.0 if self.breached else 50.0) + noise(0, 2),
            "isolator.decontamination_state": self.decontamination,
            "isolator.glove_integrity": self.gloves_ok,
            "isolator.door_sealed": self.doors_sealed,
            "isolator.h2o2_concentration": self.h2o2_now(),
            "isolator.pass_box_closed": self.doors_sealed,
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

    def result_files(self, outcome: str) -> list[tuple[str, str, bytes]]:
        """A phase-contrast image of the culture at each passage and at the end (when Pillow
        and NumPy are installed), and the cell-bank summary (JSON)."""
        if self.seeded_at is None:
            return []
        imaged = [*self.harvests, ("final", self.confluency())]
        files: list[tuple[str, str, bytes]] = []
        try:
            for number, (label, confluency) in enumerate(imaged):
                image = render_confluence(
                    min(max(confluency / 100.0, 0.0), 1.0),
                    seed=self.seed * 1000 + number,
                    metadata={"culture": label, "confluency": round(confluency, 2)},
                )
                files.append((f"phase-contrast-{label}.png", "image/png", image.png))
        except SimulationError as exc:
            _log.warning("%s: no culture images: %s", self.device_id, exc)
        summary = {
            "outcome": outcome,
            "passages": self.passages,
            "cells_harvested": round(CELLS_AT_FULL_CONFLUENCY * self.confluency() / 100.0),
            "final_confluency_percent": round(self.confluency(), 2),
            "morphology_score": round(self.morphology, 3),
            "morphology_flagged": self.flagged,
            "images": [name for name, _, _ in files],
        }
        files.append(("cell-bank-summary.json", "application/json", json.dumps(summary).encode()))
        return files

    def result_properties(self, outcome: str) -> dict[str, PropertyValue]:
        return {
            "passages": self.passages,
            "final_confluency": Q(round(self.confluency(), 2), "%"),
            "morphology_score": Q(round(self.morphology, 3), "1"),
            "morphology_flagged": self.flagged,
        }


def _number(value: PropertyValue | None, default: float) -> float:
    """A parameter's number (a quantity arrives in the unit the template declares)."""
    if isinstance(value, Quantity):
        return value.value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default
