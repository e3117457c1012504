"""The Maholo's process models: robot-command failures at the published rates, and the 40-day
iPSC-to-RPE differentiation per well with a pigmentation score that responds to the seven
optimised parameters.

Public (Kanda et al., eLife 2022;11:e77007, https://elifesciences.org/articles/77007): over 185
days, 365 jobs, 75,039 commands, 28 command errors (25 resolved by a person, 3 aborted), with
causes tip loading 4, tip ejection 7, microscope or its PC 13 (the 3 aborts among them),
defective labware 1, human error 3; 995 h 39 min of robot time. Everything else here is assumed:
commands per job type, the response surface of the score and its noise (it only has to be
plausible and noisy, so that an optimiser has something to find).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

PUBLIC_JOBS = 365
PUBLIC_JOBS_WITH_INTERVENTION = 22
PUBLIC_COMMANDS = 75_039
PUBLIC_COMMAND_ERRORS = 28
PUBLIC_ABORTS = 3
PUBLIC_DAYS = 185
PUBLIC_ROBOT_HOURS = 995 + 39 / 60
CAUSES: Mapping[str, int] = {
    "tip_load": 4,
    "tip_eject": 7,
    "microscope": 13,
    "labware": 1,
    "human": 3,
}
"""Command-error causes and their published counts."""
ALARM_OF_CAUSE: Mapping[str, str] = {
    "tip_load": "tip_load_failure",
    "tip_eject": "tip_eject_failure",
    "microscope": "microscope_failure",
    "labware": "defective_labware",
    "human": "job_needs_intervention",
}
COMMAND_OF_CAUSE: Mapping[str, str] = {
    "tip_load": "load_tip",
    "tip_eject": "eject_tip",
    "microscope": "image_plate",
    "labware": "pick_plate",
}
"""The command a failure of each cause is logged against (a human error: the command due)."""
COMMAND_FAILURE_RATE = PUBLIC_COMMAND_ERRORS / PUBLIC_COMMANDS
ABORT_GIVEN_MICROSCOPE = PUBLIC_ABORTS / CAUSES["microscope"]
MEAN_COMMANDS = PUBLIC_COMMANDS / PUBLIC_JOBS
MEAN_JOB_SECONDS = PUBLIC_ROBOT_HOURS * 3600 / PUBLIC_JOBS

COMMANDS_PER_JOB: Mapping[str, int] = {
    "seeding": 180,
    "medium_exchange_i": 230,
    "medium_exchange_ii": 190,
    "passage": 260,
}
"""Commands of one job of each type (assumed; their mix averages near the public 205.6)."""

COMMAND_CYCLE: Mapping[str, tuple[str, ...]] = {
    "seeding": ("pick_plate", "load_tip", "aspirate", "dispense", "eject_tip", "place_plate"),
    "medium_exchange_i": ("pick_plate", "aspirate_waste", "load_tip", "dispense", "eject_tip"),
    "medium_exchange_ii": ("pick_plate", "aspirate_waste", "load_tip", "dispense", "eject_tip"),
    "passage": (
        "pick_plate",
        "load_tip",
        "add_trypsin",
        "incubate_dry_bath",
        "pipette_mix",
        "eject_tip",
        "image_plate",
    ),
}
"""The command names a job repeats (assumed), for the command log."""


@dataclass(frozen=True)
class CommandFailure:
    """One failed command of a job: its index (from 1), cause and whether it aborted the job."""

    index: int
    cause: str
    aborted: bool


def draw_failures(
    rng: random.Random, commands: int, rate: float = COMMAND_FAILURE_RATE
) -> list[CommandFailure]:
    """The failed commands of one job of `commands` commands, each failing with `rate` (the
    published rate by default) in the published cause proportions (an abort only among
    microscope failures, in the published share)."""
    failures: list[CommandFailure] = []
    if rate <= 0:
        return failures
    causes, weights = list(CAUSES), list(CAUSES.values())
    for index in range(1, commands + 1):
        if rng.random() >= rate:
            continue
        cause = rng.choices(causes, weights)[0]
        aborted = cause == "microscope" and rng.random() < ABORT_GIVEN_MICROSCOPE
        failures.append(CommandFailure(index, cause, aborted))
        if aborted:
            break
    return failures


@dataclass(frozen=True)
class Parameter:
    """One optimised parameter: unit, range, default, where the assumed optimum lies and how
    wide the response is around it."""

    unit: str
    low: float
    high: float
    default: float
    optimum: float
    width: float


PARAMETERS: Mapping[str, Parameter] = {
    "preconditioning_concentration": Parameter("1", 0.0, 2.0, 1.0, 1.4, 0.5),
    "preconditioning_period": Parameter("d", 1.0, 6.0, 6.0, 4.0, 2.0),
    "trypsin_period": Parameter("min", 5.0, 40.0, 20.0, 24.0, 8.0),
    "pipetting_strength": Parameter("1", 1.0, 10.0, 5.0, 6.5, 2.5),
    "pipetting_length": Parameter("1", 1.0, 20.0, 10.0, 7.0, 5.0),
    "ksr_reduction_period": Parameter("d", 0.0, 20.0, 10.0, 13.0, 5.0),
    "chemical_supplement_period": Parameter("d", 0.0, 20.0, 10.0, 8.0, 5.0),
}
"""The seven optimised parameters (names public; units, ranges, optima and widths assumed,
except the trypsin default of 20 min, which is public)."""

WELLS_PER_PLATE = 6
BASELINE_SCORE = 8.0  # % pigmented area far from the optimum (assumed)
PEAK_SCORE = 72.0  # % at the optimum (assumed)
WELL_NOISE = 6.0  # % standard deviation well to well (assumed)
PLATE_NOISE = 3.0  # % standard deviation plate to plate (assumed)


def expected_score(values: Mapping[str, float]) -> float:
    """The mean pigmented area (%) the parameters give, without noise (assumed surface)."""
    distance = 0.0
    for name, spec in PARAMETERS.items():
        x = values.get(name, spec.default)
        distance += ((x - spec.optimum) / spec.width) ** 2
    return BASELINE_SCORE + (PEAK_SCORE - BASELINE_SCORE) * math.exp(-distance / 2)


def well_scores(rng: random.Random, values: Mapping[str, float], plates: int) -> list[float]:
    """The day-34 pigmented area (%) of every well, plate by plate (6 wells each)."""
    mean = expected_score(values)
    scores = []
    for _plate in range(plates):
        offset = rng.gauss(0.0, PLATE_NOISE)
        for _well in range(WELLS_PER_PLATE):
            score = mean + offset + rng.gauss(0.0, WELL_NOISE)
            scores.append(round(min(100.0, max(0.0, score)), 3))
    return scores


def protocol_job_mix() -> dict[str, int]:
    """Robot jobs of each type in one 40-day RPE protocol (one per day of each robot step)."""
    return {"seeding": 1, "medium_exchange_i": 6 + 19, "passage": 1, "medium_exchange_ii": 6 + 7}


def campaign(rng: random.Random, jobs: int = PUBLIC_JOBS) -> tuple[int, int, int, int]:
    """`jobs` robot jobs in the RPE protocol's job mix: (jobs with a failed command, commands,
    failed commands, aborted commands)."""
    mix = protocol_job_mix()
    kinds = [k for k, n in mix.items() for _ in range(n)]
    failed_jobs = commands = failed = aborted = 0
    for n in range(jobs):
        count = COMMANDS_PER_JOB[kinds[n % len(kinds)]]
        failures = draw_failures(rng, count)
        commands += count
        failed += len(failures)
        aborted += sum(f.aborted for f in failures)
        failed_jobs += bool(failures)
    return failed_jobs, commands, failed, aborted


def environment(rng: random.Random, setpoint: float, sd: float) -> float:
    """A controlled value near its setpoint (incubator, dry bath)."""
    return round(setpoint + rng.gauss(0.0, sd), 3)


SEEDED = (10.0, 2.0)
"""Confluency (%) of a well after seeding: mean and well-to-well sd (assumed)."""
PASSAGED = (25.0, 4.0)
"""Confluency (%) of a well after the passage (assumed)."""
PIGMENTATION_MIDPOINT = 26.0
"""Days after the passage (DDay 0) by which a well shows half its day-34 pigmentation (assumed;
pigmented RPE cells appear in the protocol's last two weeks)."""
PIGMENTATION_WIDTH = 2.5
"""Days over which pigmentation rises around its midpoint (assumed)."""
SCORING_DAY = 34.0
"""The day of the protocol the pigmentation is scored on (public)."""
GROWTH_PER_DAY = (0.7, 0.1)
"""Logistic growth rate of a well's confluency, per day: mean and sd (assumed; iPSCs double in
about a day, and a seeded well reaches confluence in about a week)."""


@dataclass(frozen=True)
class Well:
    """One well's growth since it was last seeded or passaged: confluency follows a logistic
    curve from `initial` % at virtual time `since` (s) towards 100 %, at `rate` per day."""

    since: float
    initial: float
    rate: float

    def confluency(self, now: float) -> float:
        """The well's confluency (%) at virtual time `now` (s)."""
        days = max(0.0, now - self.since) / 86400.0
        return 100.0 / (1.0 + (100.0 / self.initial - 1.0) * math.exp(-self.rate * days))


class Plates:
    """The wells of a run's plates (6 each), seeded and passaged by its robot jobs; each well
    draws its starting confluency and growth rate from `rng` (seeded: the same run grows the
    same way)."""

    def __init__(self, rng: random.Random, plates: int) -> None:
        self.rng = rng
        self.count = plates * WELLS_PER_PLATE
        self.wells: list[Well] = []
        self.induced: float | None = None
        self.scores: list[float] = []

    def seed(self, now: float) -> None:
        """Cells seeded into every well now."""
        self._restart(now, SEEDED)

    def passage(self, now: float) -> None:
        """Every well passaged now (harvested and replated at a lower confluency)."""
        self._restart(now, PASSAGED)

    def _restart(self, now: float, start: tuple[float, float]) -> None:
        rng = self.rng
        self.wells = [
            Well(
                now,
                min(90.0, max(1.0, rng.gauss(*start))),
                max(0.05, rng.gauss(*GROWTH_PER_DAY)),
            )
            for _ in range(self.count)
        ]

    def differentiate(self, now: float, scores: list[float]) -> None:
        """Differentiation starts now (the passage, DDay 0): each well's pigmented area rises
        to its `scores` entry on `SCORING_DAY`."""
        self.induced = now
        self.scores = list(scores)

    def pigmentation(self, now: float) -> list[float]:
        """Every well's pigmented area (%) now (0 before differentiation starts)."""
        if self.induced is None:
            return [0.0] * self.count

        def rise(day: float) -> float:
            return 1.0 / (1.0 + math.exp(-(day - PIGMENTATION_MIDPOINT) / PIGMENTATION_WIDTH))

        share = rise(max(0.0, now - self.induced) / 86400.0) / rise(SCORING_DAY)
        return [round(min(100.0, score * share), 3) for score in self.scores]

    def confluency(self, now: float) -> list[float]:
        """Every well's confluency (%) now, plate by plate (0 before seeding)."""
        if not self.wells:
            return [0.0] * self.count
        return [round(well.confluency(now), 3) for well in self.wells]
