"""The conformance cases every device with an adapter and a simulator passes (or declares not
applicable, with the reason repeated in its docs page)."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from conformance_support import Rig, answering, next_event, reach, skip_unless_applies

from cellauto.adapter import Conformance
from cellauto.driver import Device, RunAborted
from cellauto.registry import connect
from cellauto.schema import Event, EventKind, Sample
from cellauto.sim.truth import GroundTruth
from cellauto.state import ABORTED, EXECUTE, HELD, IDLE, STOPPED, SUSPENDED, State

DOCS = Path(__file__).resolve().parents[2] / "docs" / "devices"


def test_each_not_applicable_case_is_repeated_in_the_device_docs(
    kind: str, conformance: Conformance
) -> None:
    page = (DOCS / f"{kind}.md").read_text(encoding="utf-8")
    flat = " ".join(page.split())
    for case, reason in conformance.not_applicable.items():
        assert f"`{case}`" in flat, f"docs/devices/{kind}.md must name `{case}`"
        assert " ".join(reason.split()) in flat, f"docs/devices/{kind}.md must say: {reason}"


async def test_identity(rig: Rig) -> None:
    skip_unless_applies(rig.conformance, "identity")
    await rig.start()
    device = await rig.connect()
    info = device.info
    assert info.manufacturer
    assert info.model
    assert info.serial_number
    assert device.state in (IDLE, STOPPED)


async def test_every_channel_reads_with_its_profile_type_and_unit(rig: Rig) -> None:
    skip_unless_applies(rig.conformance, "channels")
    await rig.start()
    device = await rig.connect()
    for name, spec in rig.profile.channels().items():
        sample = await device.read(name)
        assert sample.channel == name
        assert sample.device_id == device.device_id
        expected = {"float": float, "int": int, "bool": bool, "str": str}[spec.dtype]
        assert type(sample.value) is expected, (name, sample.value)
        if spec.dtype in ("float", "int"):
            assert sample.unit == spec.unit, name


async def test_subscription_delivers_in_time_order_per_channel(rig: Rig) -> None:
    skip_unless_applies(rig.conformance, "subscription_order")
    await rig.start()
    device = await rig.connect()
    feed = device.subscribe()
    seen: dict[str, list[Sample]] = {}
    async for sample in feed:
        seen.setdefault(sample.channel, []).append(sample)
        if sum(len(s) >= 3 for s in seen.values()) >= 2:
            break
    for samples in seen.values():
        stamps = [s.timestamp for s in samples]
        assert stamps == sorted(stamps)
        seqs = [s.seq for s in samples]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)


async def _started(rig: Rig, device: Device) -> None:
    """Start the conformance program and answer its prompts until the device is in Execute;
    the next prompt then stays open, which keeps a simulated run from finishing meanwhile."""
    template, params = rig.program()
    feed = device.events()
    await device.start_program(template, params)
    async for event in feed:
        if device.state == EXECUTE:
            break
        if event.kind is EventKind.PROMPT:
            await device.answer_prompt(str(event.data["prompt_id"]), _first_choice(event), "cf")
    feed.close()


async def test_every_state_command_reaches_its_target_state(rig: Rig) -> None:
    skip_unless_applies(rig.conformance, "state_commands")
    await rig.start()
    device = await rig.connect()
    feed = device.events()
    await _started(rig, device)
    steps: list[tuple[str, State]] = [
        ("hold", HELD),
        ("unhold", EXECUTE),
        ("suspend", SUSPENDED),
        ("unsuspend", EXECUTE),
        ("stop", STOPPED),
        ("reset", IDLE),
    ]
    for command, target in steps:
        await getattr(device, command)()
        await reach(device, feed, target)
        assert device.state == target, command


async def test_abort_clear_and_reset(rig: Rig) -> None:
    skip_unless_applies(rig.conformance, "abort_clear_reset")
    await rig.start()
    device = await rig.connect()
    feed = device.events()
    await _started(rig, device)
    run = device.operation
    assert run is not None
    await device.abort()
    await reach(device, feed, ABORTED)
    with pytest.raises(RunAborted):
        await run
    await device.clear()
    await reach(device, feed, STOPPED)
    await device.reset()
    await reach(device, feed, IDLE)


async def test_a_prompt_blocks_the_run_until_answered(rig: Rig) -> None:
    skip_unless_applies(rig.conformance, "prompt_blocks")
    await rig.start()
    device = await rig.connect()
    feed = device.events()
    template, params = rig.program()
    run = await device.start_program(template, params)
    prompt = await next_event(feed, lambda e: e.kind is EventKind.PROMPT)
    step = run.status.step_number
    for channel in list(rig.profile.channels())[:5]:  # the device keeps answering meanwhile
        await device.read(channel)
    assert [p.prompt_id for p in device.prompts] == [prompt.data["prompt_id"]]
    assert run.status.step_number == step
    assert not run.done()
    await device.answer_prompt(str(prompt.data["prompt_id"]), _first_choice(prompt), "cf")
    answered = await next_event(feed, lambda e: e.kind is EventKind.PROMPT_ANSWERED)
    assert answered.data["prompt_id"] == prompt.data["prompt_id"]
    assert answered.data["user"] == "cf"
    await next_event(feed, lambda e: e.kind in (EventKind.STEP_STARTED, EventKind.PROMPT))
    await device.abort()


def _first_choice(prompt: Event) -> str:
    choices = prompt.data.get("choices") or ["done"]
    assert isinstance(choices, list)
    return str(choices[0])


async def test_every_profile_alarm_is_raised_acknowledged_and_cleared(rig: Rig) -> None:
    skip_unless_applies(rig.conformance, "alarms")
    sim = await rig.start()
    device = await rig.connect()
    feed = device.events()
    tried, ids = [], []
    for spec in rig.profile.alarms:
        if f"alarm:{spec.code}" in rig.conformance.not_applicable:
            continue
        tried.append(spec.code)

        def about(kind: EventKind, code: str = spec.code) -> object:
            return lambda e: e.kind is kind and e.data.get("code") == code

        sim.raise_alarm(spec.code)
        raised = await next_event(feed, about(EventKind.ALARM_RAISED))  # type: ignore[arg-type]
        alarm_id = str(raised.data["alarm_id"])
        ids.append(alarm_id)
        assert device.alarm(alarm_id).severity == spec.severity
        await device.acknowledge(alarm_id, "cf")
        await next_event(feed, about(EventKind.ALARM_ACKNOWLEDGED))  # type: ignore[arg-type]
        assert device.alarm(alarm_id).acknowledged_by == "cf"
        sim.clear_alarm(spec.code)
        await next_event(feed, about(EventKind.ALARM_CLEARED))  # type: ignore[arg-type]
        assert not device.alarm(alarm_id).active
    assert tried, "every alarm declared not applicable: declare the whole case instead"
    for alarm_id in ids:  # other alarms may come and go: the device's physics runs on
        assert device.alarm(alarm_id).acknowledged
        assert not device.alarm(alarm_id).active


def _declared_gaps(events: list[Event]) -> list[tuple[datetime, datetime]]:
    return [
        (datetime.fromisoformat(str(g["from"])), datetime.fromisoformat(str(g["to"])))
        for e in events
        if e.kind is EventKind.CONNECTION_CHANGED and isinstance(g := e.data.get("gap"), dict)
    ]


def _spans(gaps: list[tuple[datetime, datetime]], before: Sample, after: Sample) -> bool:
    return any(before.timestamp <= end and start <= after.timestamp for start, end in gaps)


def _within(outages: list[tuple[datetime, datetime | None]], t: datetime) -> bool:
    return any(start <= t and (end is None or t <= end) for start, end in outages)


@dataclass(frozen=True)
class Outage:
    """What the adapter reported over a short program run with the link dropped twice, and the
    simulator's ground truth of it."""

    events: list[Event]
    samples: dict[str, list[Sample]]
    truth: GroundTruth
    states: list[str]


_OUTAGES: dict[str, Outage] = {}
"""One outage run per device kind and session: the zero-loss and the seq cases read the same
run (it is the suite's longest)."""


async def _run_through_outage(rig: Rig) -> Outage:
    """The kind's outage run (made by the first case that asks for it)."""
    if rig.kind not in _OUTAGES:
        _OUTAGES[rig.kind] = await _outage_run(rig)
    return _OUTAGES[rig.kind]


async def _outage_run(rig: Rig) -> Outage:
    sim = await rig.start(faults=rig.conformance.outage_faults)
    device = await rig.connect()
    events, samples = device.events(), device.subscribe()
    helper = answering(device, device.events())
    template, params = rig.program(hours=rig.conformance.outage_hours)
    run = await device.start_program(template, params)
    await run
    helper.cancel()
    # one read-back more, so every event the device logged so far has been applied
    await device.read(next(iter(rig.profile.channels())))
    await asyncio.sleep(0)
    await device.close()
    assert sim.truth.outages, "the link never dropped: the case proved nothing"
    got_events = [e async for e in events]
    got_samples: dict[str, list[Sample]] = {}
    async for sample in samples:
        got_samples.setdefault(sample.channel, []).append(sample)
    return Outage(got_events, got_samples, sim.truth, rig.truth_states())


async def test_nothing_is_lost_across_dropped_links(rig: Rig) -> None:
    skip_unless_applies(rig.conformance, "zero_loss")
    outage = await _run_through_outage(rig)
    events, samples, truth, states = outage.events, outage.samples, outage.truth, outage.states
    reported = [str(e.to_state) for e in events if e.kind is EventKind.STATE_CHANGED]
    assert reported[-len(states) :] == states  # every transition the device made, in order
    lost = [e for e in events if "lost_seq" in e.data]
    assert lost == []
    downs = [
        e for e in events if e.kind is EventKind.CONNECTION_CHANGED and e.message == "disconnected"
    ]
    assert len(downs) <= len(truth.outages)  # one event per outage, not one per attempt
    declared = [
        (datetime.fromisoformat(str(g["from"])), datetime.fromisoformat(str(g["to"])))
        for e in events
        if e.kind is EventKind.CONNECTION_CHANGED and isinstance(g := e.data.get("gap"), dict)
    ]
    for channel, published in truth.samples.items():
        received = samples.get(channel, [])
        got = {s.timestamp for s in received}
        # between the first and the last value received (what was published before connecting
        # or after the adapter stopped listening is not lost across a dropped link)
        missing = [
            p
            for p in published
            if received
            and received[0].timestamp < p.time < received[-1].timestamp
            and p.time not in got
        ]
        if rig.conformance.values_recoverable:
            assert missing == [], channel
        else:  # values published while the link was down are exactly the declared gaps
            outside = [p.time.isoformat() for p in missing if not _within(declared, p.time)]
            assert outside == [], (channel, outside[:5], declared, truth.outages)


async def test_sample_seq_is_gapless_exactly_when_nothing_was_lost(rig: Rig) -> None:
    skip_unless_applies(rig.conformance, "sample_seq")
    outage = await _run_through_outage(rig)
    samples, truth = outage.samples, outage.truth
    gaps = _declared_gaps(outage.events)
    checked = 0
    for channel, got in samples.items():
        keys: dict[tuple[datetime, object], list[int]] = {}
        for p in truth.published(channel):
            keys.setdefault((p.time, p.value), []).append(p.seq)
        for before, after in itertools.pairwise(got):
            first = keys.get((before.timestamp, before.value), [])
            second = keys.get((after.timestamp, after.value), [])
            if len(first) != 1 or len(second) != 1:
                continue  # not published, or not told apart: nothing to compare
            on_change = rig.profile.channel(channel).sample_period is None
            if on_change and not rig.conformance.values_recoverable and _spans(gaps, before, after):
                continue  # numbered by arrival: what it published while the link was down is
                # inside a declared gap and cannot be counted (docs/devices/cocoon.md)
            checked += 1
            assert after.seq - before.seq == second[0] - first[0], (channel, before, after)
    assert checked


async def test_a_capture_replays_through_the_adapter(rig: Rig, tmp_path: Path) -> None:
    skip_unless_applies(rig.conformance, "replay")
    await rig.start()
    capture = tmp_path / "session.jsonl"
    channels = list(rig.profile.channels())[:3]

    async def session(device: Device) -> list[object]:
        out: list[object] = [device.info.model_dump(mode="json"), str(device.state)]
        for channel in channels:
            sample = await device.read(channel)
            out.append([sample.channel, sample.value, sample.unit, str(sample.timestamp)])
        await device.close()
        return out

    live = await session(await rig.connect(capture=str(capture), heartbeat="0"))
    replayed = await connect(f"{rig.kind}+replay://{capture}", device_id=f"{rig.kind}-c")
    assert await session(replayed) == live
