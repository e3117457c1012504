"""The simulated LiCellGrow's culture model (perfusion with bleed, the glucose feeding
controller, sensor drift) and its calibration prompt over the SiLA 2 wire. Every number in the
model is assumed (docs/devices/licellgrow.md)."""

from __future__ import annotations

import pytest

from cellauto.errors import CommandRejected, ConnectionLost
from cellauto.profiles import load_profile
from cellauto.registry import connect
from cellauto.schema import EventKind, ProgramTemplate
from cellauto.schema.quantity import Q
from cellauto_simulators.licellgrow import LiCellGrowSimulator
from cellauto_simulators.licellgrow.engine import (
    CALIBRATION_DUE,
    KINETICS,
    VOLUME,
    Culture,
    MetaboliteSensor,
)


def _culture(cell_type: str, *, glucose: float) -> Culture:
    culture = Culture(feeding=True, bleed_fraction=0.1, glucose=glucose)
    culture.seed(KINETICS[cell_type], KINETICS[cell_type].growth_per_day[0])
    return culture


def test_the_controller_perfuses_only_while_glucose_is_short() -> None:
    plenty = _culture("t_cell", glucose=20.0)
    plenty.advance(60)
    assert plenty.perfusion == 0.0
    assert plenty.fed == 0.0
    short = _culture("t_cell", glucose=3.0)
    short.advance(60)
    assert 0.0 < short.perfusion <= short.max_perfusion
    assert short.fed == pytest.approx(short.perfusion)  # one minute of flow
    assert short.bled == pytest.approx(0.1 * short.fed)
    assert short.bleed == pytest.approx(0.1 * short.perfusion)
    idle = _culture("t_cell", glucose=3.0)
    idle.feeding = False
    idle.advance(60)
    assert idle.perfusion == 0.0


def test_high_lactate_drives_full_perfusion() -> None:
    culture = _culture("t_cell", glucose=20.0)
    culture.lactate = culture.lactate_high + 1
    culture.advance(60)
    assert culture.perfusion == culture.max_perfusion


def test_the_bleed_takes_suspended_cells_but_not_adherent_ones() -> None:
    for cell_type, loses_cells in (("t_cell", True), ("msc", False)):
        culture = _culture(cell_type, glucose=20.0)
        before = culture.cells
        culture.exchange(100.0, bleed_fraction=0.5)
        assert (culture.cells < before) is loses_cells, cell_type
        assert culture.bled == 50.0
        assert culture.reservoir == 4900.0


def test_the_sensor_drifts_until_calibrated() -> None:
    sensor = MetaboliteSensor(glucose_drift_per_day=0.05, lactate_drift_per_day=-0.04)
    sensor.advance(86400)
    assert sensor.glucose_offset == pytest.approx(0.05)
    assert sensor.lactate_offset == pytest.approx(-0.04)
    assert sensor.state == "calibrated"
    sensor.advance((CALIBRATION_DUE - 24 + 1) * 3600)
    assert sensor.state == "drift_suspected"
    sensor.calibrated()
    assert (sensor.glucose_offset, sensor.lactate_offset, sensor.state) == (0, 0, "calibrated")


def test_the_programs_seed_their_cell_type() -> None:
    profile = load_profile("licellgrow")
    seeded = {
        program.name: [
            s.parameters.get("cell_type") for s in program.steps if s.unit_operation == "seed"
        ]
        for program in profile.programs
    }
    assert seeded == {"MSC expansion": ["msc"], "T-cell expansion": ["t_cell"]}


async def test_calibrate_sensor_asks_the_operator_for_the_standard_over_sila() -> None:
    device = await connect("licellgrow+sim://?speed=max&seed=2")
    try:
        events = device.events()
        states = device.subscribe(["metabolite_sensor.calibration_state"])
        await device.command("calibrate_sensor")
        async for event in events:
            if event.kind is EventKind.PROMPT:
                break
        assert "calibration standard" in event.message
        async for sample in states:  # values come on their own subscription: wait for them
            if sample.value == "calibrating":
                break
        await device.answer_prompt(str(event.data["prompt_id"]), "connected", "alice")
        async for sample in states:
            if sample.value == "calibrated":
                break
        assert not device.prompts
        states.close()
        events.close()
    finally:
        await device.close()


async def test_an_operation_waits_for_the_link_then_fails_with_connection_lost() -> None:
    # real-time clock: the outage outlasts the test, so the adapter stays in it; the operation
    # waits for the link to come back (half of `timeout`), as over OPC UA, then fails typed
    device = await connect("licellgrow+sim://?speed=1&seed=2&faults=disconnect@1s:1h&timeout=1")
    try:
        events = device.events()
        async for event in events:
            if event.kind is EventKind.CONNECTION_CHANGED and event.message == "disconnected":
                break
        with pytest.raises(ConnectionLost, match="feed_now"):
            await device.command("feed_now", volume=Q(10, "mL"))
        events.close()
    finally:
        await device.close()


async def test_state_transitions_made_while_the_link_was_down_are_read_back() -> None:
    # 300x real time: the answer's reply gets through before the link drops (0.2 s later)
    sim = await LiCellGrowSimulator.launch(load_profile("licellgrow"), {"speed": "300"})
    device = await connect(sim.url, time=sim.time)
    try:
        template = ProgramTemplate.model_validate(
            {
                "name": "short",
                "version": "1",
                "author": "tests",
                "device": "licellgrow",
                "steps": [
                    {"name": "Go", "unit_operation": "install_consumables", "prompt": "Go?"},
                    {"name": "Wait", "unit_operation": "wait", "duration": Q(10, "min")},
                ],
            }
        )
        events = device.events()
        run = await device.start_program(template)
        seen = []
        async for event in events:
            seen.append(event)
            if event.kind is EventKind.PROMPT:
                break
        # the link drops a minute after the answer, and the run ends (Execute -> Completing ->
        # Complete) inside the outage
        sim.inject("disconnect@1m:30m")
        await device.answer_prompt(str(event.data["prompt_id"]), "go", "tests")
        result = await run
        assert result.outcome == "complete"
        events.close()
        seen += [e async for e in events]
        assert sim.truth.outages
        assert any(e.kind is EventKind.CONNECTION_CHANGED for e in seen)
        states = [e.to_state for e in seen if e.kind is EventKind.STATE_CHANGED]
        assert states[-3:] == ["Running/Execute", "Running/Completing", "Running/Complete"], [
            (e.kind, e.from_state, e.to_state, e.message) for e in seen
        ]
    finally:
        await device.close()
        await sim.stop()


def test_a_sample_takes_its_volume_and_its_share_of_the_cells() -> None:
    culture = _culture("t_cell", glucose=20.0)
    cells = culture.cells
    culture.withdraw(5.0)
    assert culture.volume == VOLUME - 5.0
    assert culture.cells == pytest.approx(cells * (VOLUME - 5.0) / VOLUME)
    assert culture.glucose == 20.0  # a concentration: the sample does not change it


async def test_take_sample_draws_from_the_running_culture_over_sila() -> None:
    sim = await LiCellGrowSimulator.launch(
        load_profile("licellgrow"), {"seed": "4"}, default_speed="max"
    )
    device = await connect(sim.url, time=sim.time)
    try:
        with pytest.raises(CommandRejected, match=r"take_sample.*no culture is running"):
            await device.command("take_sample", volume=Q(1, "mL"))
        events = device.events()
        await device.start_program("T-cell expansion")
        async for event in events:  # the activation prompt comes after seeding; it holds time
            if event.kind is EventKind.PROMPT:
                if "activation" in event.message:
                    break
                await device.answer_prompt(str(event.data["prompt_id"]), "done", "alice")
        events.close()
        culture = sim.device.culture
        cells, glucose = culture.cells, culture.glucose
        volumes = device.subscribe(["culture.volume"])
        result = await device.command("take_sample", volume=Q(5, "mL"))
        assert result.data["sample_id"] == "LCG-SIM-1-S001"
        density = result.data["viable_cell_density"]
        assert density == {"value": pytest.approx(cells / VOLUME, rel=1e-3), "unit": "{cells}/mL"}
        assert result.data["glucose"] == {"value": round(glucose, 3), "unit": "mmol/L"}
        assert set(result.data) == {"sample_id", "viable_cell_density", "glucose", "lactate", "ph"}
        async for sample in volumes:  # published with the sample, on its own subscription
            if sample.value != VOLUME:
                break
        assert sample.value == VOLUME - 5.0
        volumes.close()
        assert culture.cells == pytest.approx(cells * (VOLUME - 5.0) / VOLUME)
        second = await device.command("take_sample", volume=Q(1, "mL"))
        assert second.data["sample_id"] == "LCG-SIM-1-S002"
        culture.volume = 3.0  # (many samples later)
        with pytest.raises(CommandRejected, match=r"take_sample.*holds less"):
            await device.command("take_sample", volume=Q(5, "mL"))
        await device.abort()
    finally:
        await device.close()
        await sim.stop()
