"""Batch orchestration against the reference device's simulator: recording, prompts,
signatures, chain of identity, safe state on errors."""

from __future__ import annotations

from pathlib import Path

import pytest

import cellauto
from cellauto.batch import AutoAnswer, Batch, IdentityMismatch
from cellauto.errors import DeviceTimeout
from cellauto.records import open_batch, verify
from cellauto.registry import register_adapter, register_simulator
from cellauto.schema import SampleInfo
from reference_device import PROFILE, IncubatorAdapter, start_simulator

register_adapter("incubator", IncubatorAdapter)
register_simulator("incubator", start_simulator)


def batch(tmp_path: Path, **kwargs: object) -> Batch:
    options: dict[str, object] = {
        "product": "MSC",
        "operator": "alice",
        "records": tmp_path,
        "sim": True,
        "patient_id": "P-7",
        "prompts": AutoAnswer(answers={"medium bag": "connected"}),
    }
    options.update(kwargs)
    return Batch("B-0001", **options)  # type: ignore[arg-type]


async def test_a_simulated_batch_records_everything_and_seals(tmp_path: Path) -> None:
    async with batch(tmp_path) as b:
        # a real address, redirected to the simulator because the batch runs with sim=True
        incubator = await b.connect("incubator+tcp://10.0.0.5:5020", profile=PROFILE)
        b.register_material(SampleInfo(container_id="BAG-1", patient_id="P-7", lot="L1"))
        await b.transfer("BAG-1", incubator)
        run = await incubator.start_program("expand", {"grow_time": cellauto.Q(24, "h")})
        result = await run
        assert result.outcome == "complete"
        assert await b.prompt("Label the harvest bag", choices=("done",)) == "done"
        b.release()
    assert verify(b.path).status == "sealed and intact"
    record = open_batch(b.path)
    assert record.manifest.state == "sealed"
    actions = record.audit.column("action").to_pylist()
    assert actions[:2] == ["record_created", "batch.start"]
    assert actions.count("sign") == 2  # responsibility at start, approval at release
    assert "material.transfer" in actions
    answers = [
        (a, v)
        for a, v in zip(actions, record.audit.column("value").to_pylist(), strict=True)
        if a == "prompt.answer"
    ]
    assert [v for _, v in answers] == ['"connected"', '"done"']
    kinds = record.events.column("kind").to_pylist()
    assert "material_transfer" in kinds
    assert "prompt" in kinds
    assert "prompt_answered" in kinds
    assert "program_finished" in kinds
    assert record.results.num_rows == 1
    samples = record.samples
    assert samples.num_rows > 0
    assert samples.column("timestamp")[0].as_py().year == 2025  # the shared virtual clock


async def test_material_of_another_patient_is_refused_and_recorded(tmp_path: Path) -> None:
    async with batch(tmp_path) as b:
        with pytest.raises(IdentityMismatch, match="patient_id is 'P-8', the batch is for 'P-7'"):
            b.register_material(SampleInfo(container_id="BAG-9", patient_id="P-8"))
        with pytest.raises(IdentityMismatch, match="never received"):
            await b.transfer("BAG-9", "incubator-1")
    actions = open_batch(b.path).audit.column("action").to_pylist()
    assert "material.register_material.refused" in actions
    assert "material.transfer.refused" in actions


async def test_an_error_holds_executing_devices_and_seals_with_the_reason(tmp_path: Path) -> None:
    b = batch(tmp_path, prompts=AutoAnswer(answers={"medium bag": "later"}))

    async def script() -> None:
        async with b:
            incubator = await b.connect("incubator+sim://", profile=PROFILE)
            await incubator.start_program("expand")
            await b.wait_for_state(incubator, "Running/Execute", timeout=5)
            raise RuntimeError("operator pressed the wrong button")

    with pytest.raises(RuntimeError, match="operator pressed the wrong button"):
        await script()
    record = open_batch(b.path)
    assert record.manifest.state == "sealed"
    assert "wrong button" in (record.manifest.seal_reason or "")
    audit = list(
        zip(
            record.audit.column("action").to_pylist(),
            record.audit.column("reason").to_pylist(),
            strict=True,
        )
    )
    assert any(action == "device.hold" and "safe state" in reason for action, reason in audit)
    assert [a for a, _ in audit[-2:]] == ["batch.end", "record_sealed"]


async def test_waiting_primitives_time_out_naming_device_and_condition(tmp_path: Path) -> None:
    async with batch(tmp_path) as b:
        incubator = await b.connect("incubator+sim://", profile=PROFILE)
        with pytest.raises(DeviceTimeout, match=r"incubator-1: wait for state Running/Held"):
            await b.wait_for_state(incubator, "Running/Held", timeout=0.2)
        with pytest.raises(DeviceTimeout, match=r"wait for chamber\.temperature"):
            await b.wait_for(incubator, "chamber.temperature", lambda v: v > 100, timeout=0.2)
        sample = await b.wait_for(incubator, "chamber.temperature", lambda v: v > 0, timeout=5)
        assert sample.unit == "Cel"
