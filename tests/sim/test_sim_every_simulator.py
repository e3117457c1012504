"""One option set over every simulator: ``cellauto sim <device> --faults <alarm code>@<time>``
makes that profile alarm happen, an unknown option is refused naming device and option, and
``--pty`` is refused where the wire is not a byte stream."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from importlib.metadata import entry_points

import pytest

from cellauto.cli import _parser, main, start_sim
from cellauto.driver import Device
from cellauto.errors import SimulationError
from cellauto.feeds import Feed
from cellauto.profiles import load_profile
from cellauto.registry import connect
from cellauto.schema import Event, EventKind

ALARM = {
    "acc200": "circuit_leak",
    "cellqualia": "temperature_out_of_range",
    "cocoon": "power_loss",
    "licellgrow": "glucose_low",
    "maholo": "microscope_failure",
    "prodigy": "door_open",
}
"""A profile alarm of each simulator."""
SERIAL = {"prodigy"}
"""Simulators whose wire is a byte stream (served on a pty on demand)."""


def test_every_installed_simulator_is_covered() -> None:
    assert {ep.name for ep in entry_points(group="cellauto.simulators")} == set(ALARM)
    for kind, code in ALARM.items():
        assert code in {a.code for a in load_profile(kind).alarms}, kind


async def next_event(feed: Feed[Event], match: Callable[[Event], bool]) -> Event:
    """The next matching event (no wall-clock bound: the suite's timeout is)."""
    async for event in feed:
        if match(event):
            return event
    raise AssertionError("the event feed ended")


@pytest.mark.parametrize("kind", sorted(ALARM))
async def test_cellauto_sim_takes_a_profile_alarm_code_as_a_fault_and_the_alarm_happens(
    kind: str,
) -> None:
    code = ALARM[kind]
    args = _parser().parse_args(["sim", kind, "--speed", "max", "--faults", f"{code}@2m"])
    sim = await start_sim(args)
    device: Device | None = None
    try:
        device = await connect(sim.url, device_id=f"{kind}-every", time=sim.time)
        feed = device.events()
        if not any(a.code == code for a in device.alarms):
            await next_event(
                feed, lambda e: e.kind is EventKind.ALARM_RAISED and e.data.get("code") == code
            )
        (alarm,) = [a for a in device.alarms if a.code == code]
        assert alarm.raised_at >= sim.clock.start + timedelta(minutes=2)
    finally:
        if device is not None:
            await device.close()
        await sim.stop()


@pytest.mark.parametrize("kind", sorted(ALARM))
def test_an_unknown_option_is_refused_naming_device_and_option(
    kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", kind, "-o", "bogus=1"]) == 1
    err = capsys.readouterr().err
    assert kind in err
    assert "bogus" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("kind", sorted(set(ALARM) - SERIAL))
def test_pty_is_refused_where_the_wire_is_not_a_byte_stream(
    kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", kind, "--pty"]) == 1
    err = capsys.readouterr().err
    assert "cannot be served on a pty" in err
    assert kind in err


@pytest.mark.parametrize("kind", sorted(SERIAL))
async def test_a_byte_stream_wire_is_served_on_a_pty(kind: str) -> None:
    sim = await start_sim(_parser().parse_args(["sim", kind, "--speed", "max", "--pty"]))
    try:
        assert sim.url.startswith(f"{kind}+serial://")
    finally:
        await sim.stop()


@pytest.mark.parametrize("kind", sorted(ALARM))
async def test_the_handle_raises_and_clears_a_profile_alarm_and_refuses_other_codes(
    kind: str,
) -> None:
    sim = await start_sim(_parser().parse_args(["sim", kind, "--speed", "max"]))
    try:
        assert type(sim).pty_capable is (kind in SERIAL)
        with pytest.raises(SimulationError, match=f"{kind} simulator: no alarm 'no_such_alarm'"):
            sim.raise_alarm("no_such_alarm")
        assert sim.raise_alarm(ALARM[kind])
        sim.clear_alarm(ALARM[kind])
    finally:
        await sim.stop()
