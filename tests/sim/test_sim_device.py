"""The simulated-device building blocks: event log with read-back, clock pins, the declared
alarm reaction, and limit alarms with hysteresis."""

from __future__ import annotations

import asyncio

import pytest

from cellauto.profiles import load_profile
from cellauto.schema import AlarmSeverity
from cellauto.sim import DiscreteEventClock, ScaledClock
from cellauto.sim.device import (
    ClockPin,
    ConditionAlarm,
    EventLog,
    LimitAlarm,
    alarm_conditions,
    alarm_reaction,
    react,
)
from cellauto.state import EXECUTE, HELD, State


def test_the_log_numbers_events_and_records_them_as_truth() -> None:
    log = EventLog(DiscreteEventClock(), maxlen=3)
    for n in range(5):
        log.append("note", {"n": n})
    assert log.seq == 5
    assert [e.seq for e in log] == [3, 4, 5]
    assert [e.seq for e in log.truth.events] == [1, 2, 3, 4, 5]


def test_read_back_names_exactly_what_the_log_no_longer_holds() -> None:
    log = EventLog(DiscreteEventClock(), maxlen=3)
    assert log.since(0) == ([], None)
    for n in range(3):
        log.append("note", {"n": n})
    assert log.since(0)[1] is None, "seq 0 never existed: nothing is lost"
    log.append("note", {"n": 3})
    log.append("note", {"n": 4})
    entries, lost = log.since(1)
    assert [e.seq for e in entries] == [3, 4, 5]
    assert lost == (1, 2)
    assert log.since(4) == (list(log)[1:], None)


def test_the_log_wraps_its_seq() -> None:
    log = EventLog(DiscreteEventClock(), wrap=3)
    assert [log.append("note", {}).seq for _ in range(5)] == [1, 2, 3, 1, 2]


async def test_a_pin_holds_a_max_speed_clock_and_is_a_no_op_in_real_time() -> None:
    clock = DiscreteEventClock()
    pin = ClockPin(clock)
    pin.hold()
    pin.hold()
    sleeper = asyncio.ensure_future(clock.sleep(10))
    for _ in range(50):
        await asyncio.sleep(0)
    assert clock.monotonic() == 0.0
    pin.release()
    await sleeper
    assert clock.monotonic() == 10.0
    real = ClockPin(ScaledClock(1000.0))
    real.hold()
    assert not real.held


class _Run:
    def __init__(self, state: State) -> None:
        self.state = state
        self.done: list[str] = []

    def hold(self) -> None:
        self.done.append("hold")
        self.state = HELD

    def stop(self) -> None:
        self.done.append("stop")

    def abort(self) -> None:
        self.done.append("abort")


def test_the_alarm_reaction_is_declared_once_in_the_profile() -> None:
    prodigy, cocoon = load_profile("prodigy"), load_profile("cocoon")
    assert alarm_reaction(prodigy, AlarmSeverity.CRITICAL) == "abort"
    assert alarm_reaction(prodigy, "error") == "hold"
    assert alarm_reaction(prodigy, "warning") == "none"
    assert all(alarm_reaction(cocoon, s) == "none" for s in AlarmSeverity)
    run = _Run(EXECUTE)
    react("hold", run)
    react("hold", run)  # held already: hold acts only in Execute
    react("abort", run)
    react("none", run)
    assert run.done == ["hold", "abort"]


@pytest.mark.parametrize(
    ("value", "active", "violated"),
    [(37.0, False, False), (38.2, False, True), (37.95, True, True), (37.85, True, False)],
)
def test_a_limit_alarm_clears_only_inside_its_hysteresis(
    value: float, active: bool, violated: bool
) -> None:
    limit = LimitAlarm.from_profile(
        load_profile("prodigy"), "chamber.temperature", "temperature_deviation"
    )
    assert (limit.low, limit.high) == (36, 38)
    assert limit.violated(value, active) is violated


def test_conditions_combine_per_code_and_limits_keep_their_hysteresis() -> None:
    profile = load_profile("prodigy")
    alarms = [
        LimitAlarm.from_profile(profile, "chamber.temperature", "temperature_deviation"),
        ConditionAlarm("chamber.door_closed", "door_open", False),
        ConditionAlarm("pump.air_detected", "air_detected", True),
        ConditionAlarm("pump.air_in_line", "air_detected", True),
    ]
    quiet = {"chamber.temperature": 37.0, "chamber.door_closed": True, "pump.air_detected": False}
    assert alarm_conditions(alarms, quiet, set()) == {
        "temperature_deviation": False,
        "door_open": False,
        "air_detected": False,
    }
    loud = quiet | {"chamber.temperature": 38.2, "pump.air_in_line": True}
    assert alarm_conditions(alarms, loud, set()) == {
        "temperature_deviation": True,
        "door_open": False,
        "air_detected": True,  # one of its two conditions holds
    }
    inside = quiet | {"chamber.temperature": 37.95}
    assert alarm_conditions(alarms, inside, {"temperature_deviation"})["temperature_deviation"]
    assert not alarm_conditions(alarms, inside, set())["temperature_deviation"]
    text = quiet | {"chamber.temperature": "n/a", "chamber.door_closed": False}
    assert alarm_conditions(alarms, text, {"temperature_deviation"}) == {
        "temperature_deviation": False,  # a limit holds only on a number
        "door_open": True,
        "air_detected": False,
    }
