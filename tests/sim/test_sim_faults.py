"""Fault injection: the spec grammar, the scheduler's timing, sensor faults, process alarms."""

from __future__ import annotations

import asyncio
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests_sim_programs import three_step

from cellauto.errors import FaultSpecError
from cellauto.sim import (
    Bioreactor,
    DiscreteEventClock,
    Fault,
    FaultKind,
    FaultScheduler,
    ProgramRunner,
    SensorFaults,
    format_duration,
    format_faults,
    parse_duration,
    parse_faults,
)
from cellauto.sim.faults import SENSOR, resolve

H = 3600.0
BRIEF = "disconnect@2h,stall@3h:10m,sensor_drift:chamber.ph@1d,temperature_excursion@36h"


def test_parses_the_documented_example() -> None:
    assert parse_faults(BRIEF) == [
        Fault(FaultKind.DISCONNECT, 2 * H),
        Fault(FaultKind.STALL, 3 * H, duration=600.0),
        Fault(FaultKind.SENSOR_DRIFT, 86400.0, target="chamber.ph"),
        Fault(FaultKind.TEMPERATURE_EXCURSION, 36 * H),
    ]
    assert format_faults(parse_faults(BRIEF)) == BRIEF
    assert parse_faults("") == []


def test_parses_values_random_times_and_composite_durations() -> None:
    (corrupt, drift, excursion, leak) = parse_faults(
        "corrupt@1d12h=3, sensor_drift:chamber.glucose@~2d:6h=-0.2,"
        "temperature_excursion@90m:20m=-3,leak@5400"
    )
    assert (corrupt.at, corrupt.magnitude) == (36 * H, 3.0)
    assert (drift.random, drift.at, drift.duration, drift.value) == (True, 172800.0, 6 * H, -0.2)
    assert (excursion.at, excursion.effective_duration, excursion.magnitude) == (5400, 1200, -3)
    assert (leak.at, leak.category, leak.end) == (5400.0, "process", None)
    assert Fault(FaultKind.TEMPERATURE_EXCURSION, 0).effective_duration == 1800.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("explode@1h", "fault 1 'explode@1h': unknown kind 'explode'; known: disconnect, stall"),
        ("stall@3h", "stall needs a duration, e.g. stall@3h:10m"),
        ("sensor_drift@1d", "sensor_drift needs a channel such as sensor_drift:chamber.ph@1d"),
        ("sensor_stuck:chamber ph@1d", "needs a channel"),
        ("disconnect:chamber.ph@1h", "disconnect takes no channel"),
        ("disconnect@2x", "bad duration '2x' at 'x'"),
        ("disconnect@1h30", "every part needs a unit, e.g. 1h30m"),
        ("disconnect@", "empty duration"),
        ("disconnect 2h", "expected kind[:channel]@[~]time[:duration][=value]"),
        ("corrupt@1h:10m", "corrupt takes no duration"),
        ("corrupt@1h=2.5", "frame count must be a whole number >= 1"),
        ("leak@1h=2", "leak takes no =value"),
        ("sensor_drift:chamber.ph@1h=fast", "value 'fast' is not a number"),
        ("stall@1h:10m,,leak@2h", "fault 2 is empty"),
        ("leak@1h, explode@2h", "fault 2 'explode@2h'"),
    ],
)
def test_bad_specs_are_refused_with_clear_messages(spec: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=None) as info:
        parse_faults(spec)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


seconds = st.one_of(
    st.integers(0, 400 * 86400).map(float), st.floats(0, 1e7, allow_nan=False, allow_infinity=False)
)


names = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_lowercase),
    st.text(string.ascii_lowercase + string.digits + "_", max_size=8),
)
"""A unit or variable name (`[a-z][a-z0-9_]{0,8}`; built from parts, as a regex strategy is slow
to start)."""


@st.composite
def faults(draw: st.DrawFn) -> Fault:
    kind = draw(st.sampled_from(list(FaultKind)))
    target = f"{draw(names)}.{draw(names)}" if kind in SENSOR else None
    duration: float | None
    if kind is FaultKind.STALL:
        duration = draw(seconds)
    elif kind in (FaultKind.CORRUPT, FaultKind.DROP_BYTES):
        duration = None
    else:
        duration = draw(st.none() | seconds)
    value: float | None = None
    if kind in (FaultKind.CORRUPT, FaultKind.DROP_BYTES):
        value = draw(st.none() | st.integers(1, 1000).map(float))
    elif kind in (FaultKind.SENSOR_DRIFT, FaultKind.TEMPERATURE_EXCURSION):
        value = draw(st.none() | st.floats(-1e6, 1e6, allow_nan=False))
    return Fault(kind, draw(seconds), target, duration, value, draw(st.booleans()))


@given(st.lists(faults(), max_size=6))
def test_format_parse_round_trip(items: list[Fault]) -> None:
    assert parse_faults(format_faults(items)) == items


@given(seconds)
def test_duration_round_trip(value: float) -> None:
    assert parse_duration(format_duration(value)) == value


def test_duration_formats() -> None:
    assert [format_duration(x) for x in (0, 59, 600, 5400, 129600, 172800, 90061, 0.5)] == [
        "0s", "59s", "10m", "90m", "36h", "2d", "1d1h1m1s", "0.5s",
    ]  # fmt: skip
    assert parse_duration("1min") == parse_duration("1m") == 60


class RecordingSink:
    def __init__(self, clock: DiscreteEventClock) -> None:
        self.clock = clock
        self.calls: list[tuple[str, float, float]] = []

    def disconnect(self, duration: float) -> None:
        self.calls.append(("disconnect", self.clock.monotonic(), duration))

    def stall(self, duration: float) -> None:
        self.calls.append(("stall", self.clock.monotonic(), duration))

    def corrupt(self, frames: int) -> None:
        self.calls.append(("corrupt", self.clock.monotonic(), frames))


async def test_scheduler_fires_at_the_right_virtual_times() -> None:
    clock = DiscreteEventClock()
    await clock.sleep(H)  # the origin is the scheduler's creation, not the clock's start
    sink = RecordingSink(clock)
    reactor = Bioreactor(seed=0)
    alarms: list[tuple[str, str, float]] = []
    scheduler = FaultScheduler(
        parse_faults(
            "corrupt@5h=2,disconnect@2h:1m,stall@3h:10m,temperature_excursion@36h:30m=2,"
            "pump_occlusion@2d:10m,sensor_stuck:chamber.ph@1d:1h"
        ),
        clock,
        sink=sink,
        model=reactor,
        alarm_codes={"temperature_excursion": "chamber_temperature_deviation"},
        on_alarm=lambda code, f: alarms.append(("raise", code, clock.monotonic())),
        on_clear=lambda code, f: alarms.append(("clear", code, clock.monotonic())),
    )

    async def follow_model() -> None:
        while clock.monotonic() < 40 * H:
            await clock.sleep(60.0)
            reactor.advance_to(clock.monotonic() - H)

    follower = asyncio.create_task(follow_model())
    await scheduler.run()
    await follower
    assert sink.calls == [
        ("disconnect", 3 * H, 60.0),
        ("stall", 4 * H, 600.0),
        ("corrupt", 6 * H, 2),
    ]
    assert alarms == [
        ("raise", "chamber_temperature_deviation", 37 * H),
        ("clear", "chamber_temperature_deviation", 37.5 * H),
        ("raise", "pump_occlusion", 49 * H),
        ("clear", "pump_occlusion", 49 * H + 600),
    ]
    fired = [(round(t), f.kind.value, phase) for t, f, phase in scheduler.fired]
    assert fired[:5] == [
        (2 * 3600, "disconnect", "start"),
        (3 * 3600, "stall", "start"),
        (5 * 3600, "corrupt", "start"),
        (24 * 3600, "sensor_stuck", "start"),
        (25 * 3600, "sensor_stuck", "end"),
    ]
    assert reactor.true_value("temperature") == pytest.approx(37.0, abs=0.05)


async def test_temperature_excursion_drives_the_model_off_setpoint() -> None:
    clock = DiscreteEventClock()
    reactor = Bioreactor(seed=0)
    scheduler = FaultScheduler(parse_faults("temperature_excursion@1h:1h=2"), clock, model=reactor)
    peak = 0.0

    async def follow() -> None:
        nonlocal peak
        while clock.monotonic() < 3 * H:
            await clock.sleep(60.0)
            reactor.advance_to(clock.monotonic())
            peak = max(peak, reactor.true_value("temperature"))

    await asyncio.gather(scheduler.run(), follow())
    assert 38.0 < peak < 39.0


def test_sensor_drift_stuck_and_dropout_apply_in_their_windows() -> None:
    sensors = SensorFaults(
        parse_faults(
            "sensor_drift:chamber.ph@1h:2h=0.1,sensor_stuck:chamber.temperature@1h,"
            "sensor_dropout:chamber.glucose@30m:30m"
        )
    )
    assert sensors.apply("chamber.ph", 7.2, 0.5 * H) == 7.2
    assert sensors.apply("chamber.ph", 7.2, 2 * H) == pytest.approx(7.3)
    assert sensors.apply("chamber.ph", 7.2, 3 * H) == 7.2  # window closed
    assert sensors.apply("chamber.temperature", 37.1, 0.9 * H) == 37.1
    assert sensors.apply("chamber.temperature", 38.0, 1.5 * H) == 37.1
    assert sensors.apply("chamber.temperature", 36.0, 100 * H) == 37.1
    assert sensors.apply("chamber.glucose", 8.0, 0.6 * H) is None
    assert sensors.apply("chamber.glucose", 8.0, H) == 8.0
    assert sensors.apply("chamber.volume", 100.0, 2 * H) == 100.0


async def test_scheduler_applies_sensor_faults_by_virtual_time() -> None:
    clock = DiscreteEventClock()
    scheduler = FaultScheduler(parse_faults("sensor_dropout:chamber.ph@1h"), clock)
    assert scheduler.apply("chamber.ph", 7.1) == 7.1
    await clock.sleep(H)
    assert scheduler.apply("chamber.ph", 7.1) is None


def test_random_times_are_deterministic_under_a_seed() -> None:
    faults = parse_faults("disconnect@~1d,stall@~1d:1m,leak@~10d")
    a, b, c = resolve(faults, 7), resolve(faults, 7), resolve(faults, 8)
    assert a == b != c
    assert all(not f.random and 0 <= f.at <= 10 * 86400 for f in a)
    assert [f.at for f in a] == sorted(f.at for f in a)


async def run_batch(seed: int) -> list[tuple[str, float, str]]:
    """Model + runner + faults on one max-speed clock: the whole simulated day."""
    clock = DiscreteEventClock()
    reactor = Bioreactor(seed=seed)
    reactor.seed(5e7, 100.0)
    log: list[tuple[str, float, str]] = []
    scheduler = FaultScheduler(
        parse_faults("sensor_drift:chamber.ph@~12h,temperature_excursion@~20h"),
        clock,
        seed=seed,
        model=reactor,
        on_alarm=lambda code, f: log.append(("alarm", clock.monotonic(), code)),
    )
    runner = ProgramRunner(three_step(), clock)
    runner.add_listener(lambda e: log.append((e.kind, clock.monotonic(), str(e.status.state))))

    async def sample() -> None:
        while clock.monotonic() < 24 * H:
            await clock.sleep(600.0)
            reactor.advance_to(clock.monotonic())
            for r in reactor.readings():
                value = scheduler.apply(r.channel, r.value)
                log.append((r.channel, clock.monotonic(), repr(value)))

    await asyncio.gather(runner.run(), scheduler.run(), sample())
    return log


async def test_whole_simulation_is_deterministic_under_a_seed() -> None:
    first, second, other = await run_batch(3), await run_batch(3), await run_batch(4)
    assert first == second
    assert first != other
