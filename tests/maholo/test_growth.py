"""Day-by-day growth per well: wells seeded and passaged by the robot jobs grow towards
confluence (logistic, seeded variability), `microscope.confluency` follows them, and plate
images show it."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cellauto.driver import Device, RunAborted
from cellauto.profiles import load_profile
from cellauto.registry import connect
from cellauto.schema import EventKind, ProgramStep, ProgramTemplate
from cellauto.schema.quantity import Q
from cellauto.sim import start_simulator
from cellauto.sim.images import covered_fraction
from cellauto_simulators.maholo import process

DAY = 86400.0


@given(seed=st.integers(0, 2**32), plates=st.integers(1, 8), day=st.floats(0.0, 40.0))
def test_a_seeded_well_grows_monotonically_towards_confluence(
    seed: int, plates: int, day: float
) -> None:
    wells = process.Plates(random.Random(seed), plates)
    assert wells.confluency(0.0) == [0.0] * plates * 6
    wells.seed(0.0)
    now, later = wells.confluency(day * DAY), wells.confluency((day + 1) * DAY)
    assert all(0.0 < a <= b <= 100.0 for a, b in zip(now, later, strict=True))


def test_wells_differ_and_the_same_seed_grows_them_the_same() -> None:
    def grown(seed: int) -> list[float]:
        wells = process.Plates(random.Random(seed), 8)
        wells.seed(0.0)
        return wells.confluency(4 * DAY)

    assert grown(1) == grown(1)
    assert grown(1) != grown(2)
    assert len(set(grown(1))) > 40  # seeded variability well to well
    wells = process.Plates(random.Random(1), 8)
    wells.seed(0.0)
    assert max(wells.confluency(14 * DAY)) > 95.0  # confluent after two weeks
    wells.passage(14 * DAY)
    assert max(wells.confluency(14 * DAY)) < 60.0  # a passage replates them sparser


@given(seed=st.integers(0, 2**32), day=st.floats(0.0, 40.0))
def test_pigmentation_rises_after_the_passage_to_the_day_34_score(seed: int, day: float) -> None:
    rng = random.Random(seed)
    scores = process.well_scores(rng, {}, 2)
    wells = process.Plates(rng, 2)
    assert wells.pigmentation(0.0) == [0.0] * 12  # no differentiation before the passage
    wells.differentiate(0.0, scores)
    now, later = wells.pigmentation(day * DAY), wells.pigmentation((day + 1) * DAY)
    assert all(0.0 <= a <= b <= 100.0 for a, b in zip(now, later, strict=True))
    assert wells.pigmentation(process.SCORING_DAY * DAY) == pytest.approx(scores, abs=1e-3)
    assert max(wells.pigmentation(10 * DAY)) < 0.01 * max(scores) + 1e-3  # none in week two


def rpe_in_days() -> ProgramTemplate:
    """The RPE program's first days: labware, seeding (1 d), preconditioning shortened to 4 d."""
    template = load_profile("maholo").program("iPSC-RPE differentiation")
    steps = [s for s in template.steps if s.unit_operation in ("load_labware", "seed")]
    steps.append(
        ProgramStep(
            name="Preconditioning",
            unit_operation="medium_exchange",
            functional_unit="robot",
            duration=Q(4, "d"),
            parameters={"job": "medium_exchange_i"},
        )
    )
    data = template.model_dump(exclude={"content_hash"}) | {"steps": steps, "name": "RPE days"}
    return ProgramTemplate.model_validate(data)


async def _answering(device: Device) -> None:
    async for event in device.events():
        if event.kind is EventKind.PROMPT:
            await device.answer_prompt(str(event.data["prompt_id"]), "done", "op")


async def test_confluency_rises_day_by_day_and_plate_images_show_it() -> None:
    sim = await start_simulator("maholo", seed=5, speed="max", failures="off")
    device = await connect(sim.url, device_id="m-grow", time=sim.time)
    feed = device.subscribe(["microscope.confluency"])
    helper = asyncio.create_task(_answering(device))
    values: list[float] = []
    images: list[str] = []
    try:
        run = await device.start_program(rpe_in_days(), {})
        async for sample in feed:
            values.append(float(sample.value))
            if values[-1] > 0.0 and not images:  # seeded
                images.append(
                    str((await device.command("capture_image", plate_id="P2")).data["image_id"])
                )
            if values[-1] > 40.0:
                images.append(
                    str((await device.command("capture_image", plate_id="P2")).data["image_id"])
                )
                break
        await device.abort()
        with contextlib.suppress(RunAborted):
            await run
        stored = sim.device.images  # type: ignore[attr-defined]
    finally:
        helper.cancel()
        await device.close()
        await sim.stop()
    assert values[0] < 20.0 < 40.0 < values[-1]  # seeded sparse, grown day by day
    assert values == sorted(values)
    seeded, grown = (stored[i] for i in images)
    assert len(grown[1]["well_confluency"]) == 6
    assert seeded[1]["confluency"] < 20.0 < 40.0 < grown[1]["confluency"]
    assert covered_fraction(grown[0]) > covered_fraction(seeded[0]) + 0.1
