"""The adapter against the simulator over TCP and a real pty: identity, every channel, samples,
every state command, every profile command, NAKs and retries."""

from __future__ import annotations

import asyncio

import pytest
from prodigy_helpers import start_tct

from cellauto.driver import RunAborted, RunStopped
from cellauto.errors import CommandRejected, InvalidTransition
from cellauto.schema import Q
from cellauto.state import ABORTED, EXECUTE, HELD, IDLE, STOPPED, SUSPENDED
from cellauto_adapters.prodigy import ProdigyAdapter
from cellauto_simulators.prodigy import ProdigySimulator


async def test_identity_state_and_every_channel(device: ProdigyAdapter) -> None:
    assert device.info.manufacturer == "Miltenyi Biotec"
    assert "simulated" in device.info.model
    assert device.state == STOPPED
    channels = device.profile.channels()
    for name, spec in channels.items():
        sample = await device.read(name)
        assert sample.channel == name
        assert sample.timestamp.tzinfo is not None
        if spec.dtype == "float":
            assert sample.unit == spec.unit
        elif spec.dtype == "bool":
            assert isinstance(sample.value, bool)
        else:
            assert isinstance(sample.value, str)
            assert sample.value in (spec.choices or [])
    temperature = await device.read("chamber.temperature")
    assert 36.5 < float(temperature.value) < 37.5


async def test_subscribe_delivers_samples_in_event_order(device: ProdigyAdapter) -> None:
    feed = device.subscribe(["chamber.temperature", "chamber.co2"])
    seen = []
    async with asyncio.timeout(5):
        async for sample in feed:
            seen.append(sample)
            if len(seen) == 4:
                break
    assert {s.channel for s in seen} <= {"chamber.temperature", "chamber.co2"}
    assert [s.seq for s in seen] == sorted(s.seq for s in seen)
    assert all(s.unit in ("Cel", "%") for s in seen)


async def test_hold_unhold_suspend_unsuspend_stop_reset(device: ProdigyAdapter) -> None:
    await start_tct(device)
    run = device.operation
    assert run is not None
    await device.hold()
    assert device.state == HELD
    await device.hold()  # targets a state: twice is safe
    await device.unhold()
    assert device.state == EXECUTE
    await device.suspend()
    assert device.state == SUSPENDED
    await device.unsuspend()
    assert device.state == EXECUTE
    await device.stop()
    assert device.state == STOPPED  # the reply names the final state (stop ends in the command)
    with pytest.raises(RunStopped) as stopped:
        await run
    assert stopped.value.result is not None
    assert stopped.value.result.outcome == "stopped"
    await device.reset()
    assert device.state == IDLE


async def test_abort_and_clear(device: ProdigyAdapter) -> None:
    await start_tct(device)
    run = device.operation
    assert run is not None
    await device.abort()
    assert device.state == ABORTED
    with pytest.raises(RunAborted):
        await run
    with pytest.raises(InvalidTransition, match="prodigy-1"):
        await device.reset()
    await device.clear()
    assert device.state == STOPPED


async def test_profile_commands(device: ProdigyAdapter) -> None:
    selected = await device.command("select_process", process="TCT")
    assert selected.accepted
    assert selected.data["process"] == "TCT"
    test = await device.command("run_integrity_test")
    assert test.data["result"] == "pass"
    assert (await device.read("fluidics.tubing_set")).value == "TS520"
    entered = await device.command(
        "enter_ipc_result", glucose=Q(0.01, "mol/L"), viability=Q(91, "%")
    )
    assert entered.data["n"] == 2
    glucose = await device.read("in_process_control.glucose")
    assert glucose.unit == "mmol/L"
    assert 9.9 < float(glucose.value) < 10.1
    report = await device.command("export_run_report")
    assert report.accepted
    with pytest.raises(CommandRejected, match="E04"):
        await device.command("take_sample", volume=Q(2, "mL"))  # no culture in the chamber
    await start_tct(device)
    with pytest.raises(CommandRejected, match=r"prodigy-1: select_process: .*E04"):
        await device.command("select_process", process="CD34")


async def test_naks_name_device_operation_and_reason(
    device: ProdigyAdapter, sim: ProdigySimulator
) -> None:
    with pytest.raises(CommandRejected, match=r"prodigy-1: answer_prompt P9: .*no such open"):
        await device.answer_prompt("P9", "done", "alice")
    with pytest.raises(CommandRejected, match=r"prodigy-1: acknowledge A1"):
        await device.acknowledge("A1", "alice")
    sim.nak_next("E04")
    with pytest.raises(CommandRejected, match=r"prodigy-1: read chamber.co2: .*NAK E04"):
        await device.read("chamber.co2")


@pytest.mark.parametrize("code", ["E01", "E05"])
async def test_retries_on_nak_with_the_same_seq(
    device: ProdigyAdapter, sim: ProdigySimulator, code: str
) -> None:
    sim.nak_next(code, 3)
    sample = await device.read("chamber.temperature")
    assert sample.unit == "Cel"
    sim.nak_next(code, 4)  # one more than the adapter retries
    with pytest.raises(CommandRejected, match=code):
        await device.read("chamber.temperature")


async def test_a_corrupted_reply_is_resent_not_acted_twice(
    device: ProdigyAdapter, sim: ProdigySimulator
) -> None:
    await start_tct(device)
    before = device.framing_errors
    sim.server.corrupt(1)
    await device.hold()  # the reply is corrupted: timeout, resend the same seq, cached reply
    assert device.state == HELD
    assert device.framing_errors > before
    await device.unhold()
    assert device.state == EXECUTE
