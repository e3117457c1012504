"""The simulator factory and handle: one option set, typed refusals, injection, ground truth."""

from __future__ import annotations

import asyncio
import itertools
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from cellauto.cli import main
from cellauto.driver import Device
from cellauto.errors import SimOptionError
from cellauto.registry import connect
from cellauto.sim import SimHandle, start_simulator

FAST = "timeout=3&heartbeat=0.3"


@pytest.fixture(params=["prodigy", "cocoon"])
async def handle(request: pytest.FixtureRequest) -> AsyncIterator[SimHandle]:
    sim = await start_simulator(str(request.param), speed="max", seed=3)
    yield sim
    await sim.stop()


async def _client(sim: SimHandle) -> Device:
    return await connect(f"{sim.url}?{FAST}", time=sim.time)


async def test_every_simulator_starts_behind_one_handle(handle: SimHandle) -> None:
    assert handle.url.startswith(f"{handle.kind}+")
    assert handle.time is handle.clock
    device = await _client(handle)
    try:
        assert device.info is not None
    finally:
        await device.close()


@pytest.mark.parametrize("kind", ["prodigy", "cocoon"])
@pytest.mark.parametrize(
    ("options", "option"),
    [
        ({"sped": "max"}, "sped"),
        ({"port": 99999}, "port"),
        ({"faults": "sensor_drift:chamber.nonexistent@1h"}, "faults"),
        ({"faults": "no_such_fault@1h"}, "faults"),
    ],
)
async def test_bad_options_are_refused_naming_device_and_option(
    kind: str, options: dict[str, object], option: str
) -> None:
    with pytest.raises(SimOptionError) as info:
        await start_simulator(kind, **options)  # type: ignore[arg-type]
    assert (info.value.device, info.value.option) == (kind, option)
    assert kind in str(info.value)
    assert option in str(info.value)


async def test_pty_is_refused_where_the_wire_is_not_a_byte_stream() -> None:
    with pytest.raises(SimOptionError, match="cannot be served on a pty") as info:
        await start_simulator("cocoon", pty=True)
    assert info.value.option == "pty"


async def test_a_port_in_use_is_a_typed_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SimOptionError, match=f"port {port}"):
            await start_simulator("prodigy", port=port)


@pytest.mark.parametrize("kind", ["prodigy", "cocoon"])
async def test_faults_take_profile_alarm_codes_and_truth_logs_them(kind: str) -> None:
    code = "door_open" if kind == "prodigy" else "power_loss"
    sim = await start_simulator(kind, faults=f"{code}@10m:2m")
    device = await _client(sim)
    try:
        await sim.clock.sleep(15 * 60)
    finally:
        await device.close()
        await sim.stop()
    alarm_events = [e for e in sim.truth.events if e.kind.lower() == "alarm"]
    statuses = [
        (e.data.get("code", e.data.get("Code")), e.data.get("st", e.data.get("Status")))
        for e in alarm_events
    ]
    assert (code, "raised") in statuses
    assert (code, "cleared") in statuses
    raised = next(
        e.time for e in alarm_events if e.data.get("st", e.data.get("Status")) == "raised"
    )
    assert raised >= sim.clock.start + timedelta(minutes=10)


async def test_raise_and_clear_alarm_through_the_handle(handle: SimHandle) -> None:
    device = await _client(handle)
    try:
        code = "door_open" if handle.kind == "prodigy" else "power_loss"
        alarm_id = handle.raise_alarm(code)
        assert alarm_id
        await handle.clock.sleep(120)
        handle.clear_alarm(code)
        await handle.clock.sleep(120)
    finally:
        await device.close()
    ids = {e.data.get("id", e.data.get("AlarmId")) for e in handle.truth.events}
    assert alarm_id in ids
    assert not any(
        e.data.get("code", e.data.get("Code")) == code
        for e in handle.truth.events[-1:]
        if e.kind.lower() == "alarm" and e.data.get("st", e.data.get("Status")) == "raised"
    )


async def test_ground_truth_numbers_each_channels_publications_and_records_outages(
    handle: SimHandle,
) -> None:
    device = await _client(handle)
    start = handle.clock.now()
    handle.inject("disconnect@5m:1m")
    try:
        await handle.clock.sleep(20 * 60)
    finally:
        await device.close()
    truth = handle.truth
    assert truth.samples, "the device published values"
    for channel, series in truth.samples.items():
        assert [s.seq for s in series] == list(range(len(series))), channel
        assert all(a.time <= b.time for a, b in itertools.pairwise(series))
    seqs = [e.seq for e in truth.events]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(truth.outages) == 1
    down, up = truth.outages[0]
    assert down >= start + timedelta(minutes=5)
    assert up is not None
    assert up - down >= timedelta(minutes=1)
    channel = next(iter(truth.samples))
    inside = truth.published(channel, down, up)
    assert all(down <= s.time < up for s in inside)


def test_cli_sim_reports_bad_ports_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "prodigy", "--port", "99999"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "port" in err
    assert "Traceback" not in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["sim", "prodigy", "--port", str(taken.getsockname()[1])]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot listen" in err


def test_cli_sim_refuses_pty_for_cocoon(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "cocoon", "--pty"]) == 1
    assert "pty" in capsys.readouterr().err


def test_cli_sim_takes_profile_alarm_codes_as_faults() -> None:
    command = [sys.executable, "-m", "cellauto.cli", "sim", "prodigy", "--speed", "max"]
    with subprocess.Popen(
        [*command, "--faults", "door_open@1h:10m"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().startswith("prodigy+tcp://127.0.0.1:")
        finally:
            proc.terminate()
            proc.wait()


@pytest.mark.parametrize("kind", ["prodigy", "cocoon"])
async def test_an_idle_simulator_at_max_speed_holds_its_clock_until_a_client_comes(
    kind: str,
) -> None:
    sim = await start_simulator(kind, speed="max")
    try:
        for _ in range(200):  # far more quiet loop turns than the clock needs to advance
            await asyncio.sleep(0)
        assert sim.clock.monotonic() == 0.0
        device = await _client(sim)
        await sim.clock.sleep(60)
        await device.close()
    finally:
        await sim.stop()
    assert sim.clock.monotonic() >= 60.0


async def test_prodigy_samples_carry_the_per_channel_counter_ground_truth_numbers() -> None:
    sim = await start_simulator("prodigy", seed=2)
    device = await _client(sim)
    try:
        await sim.clock.sleep(3 * 3600)
    finally:
        await device.close()
        await sim.stop()
    sent = [e.data for e in sim.truth.events if e.kind == "SAMPLE"]
    assert sent
    for channel, series in sim.truth.samples.items():
        numbers = [int(d["n"]) for d in sent if d["ch"] == channel]
        assert numbers == [s.seq for s in series] == list(range(len(series)))


async def test_cocoon_writes_each_periodic_channel_once_per_period_stamped_at_k_periods() -> None:
    from cellauto.profiles import load_profile

    sim = await start_simulator("cocoon", seed=5)
    device = await _client(sim)
    try:
        await sim.clock.sleep(2 * 3600)
    finally:
        await device.close()
        await sim.stop()
    origin = sim.clock.start
    periodic = {
        name: ch.sample_period.to("s").value
        for name, ch in load_profile("cocoon").channels().items()
        if ch.sample_period is not None
    }
    assert periodic
    for channel, period in periodic.items():
        series = sim.truth.samples[channel]
        assert len(series) >= 2 * 3600 // period
        for k, sample in enumerate(series):
            assert sample.seq == k
            assert sample.time == origin + timedelta(seconds=k * period), channel
