"""Helpers and fixtures of the device conformance suite (see conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from importlib.metadata import entry_points
from typing import Any
from urllib.parse import urlencode

import pytest

from cellauto.adapter import Conformance, conformance_of
from cellauto.driver import Device
from cellauto.feeds import Feed
from cellauto.profiles import load_profile
from cellauto.protocols import load_protocol
from cellauto.registry import connect, load_adapter
from cellauto.schema import Event, EventKind, ProgramStep, ProgramTemplate
from cellauto.schema.quantity import Q
from cellauto.sim import SimHandle, start_simulator
from cellauto.state import State

KINDS = sorted(
    {ep.name for ep in entry_points(group="cellauto.adapters")}
    & {ep.name for ep in entry_points(group="cellauto.simulators")}
)
"""Every installed device with an adapter and a simulator (entry points, as `adapter_names()`
and `simulator_names()` list them; devices registered in-process by other test modules are not
taken, so the suite does not depend on collection order)."""


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """Each conformance case runs once per device kind."""
    return str(request.param)


@pytest.fixture
def conformance(kind: str) -> Conformance:
    return conformance_of(load_adapter(kind))


def skip_unless_applies(conformance: Conformance, case: str) -> None:
    """Skip `case` where the device declared it does not apply (with the declared reason)."""
    reason = conformance.not_applicable.get(case)
    if reason is not None:
        pytest.skip(f"not applicable: {reason}")


@pytest.fixture(autouse=True)
def _known_defects(request: pytest.FixtureRequest, kind: str) -> None:
    """A case the device declares as a known defect is a strict expected failure."""
    for name, defect in conformance_of(load_adapter(kind)).known_defects.items():
        if CASE_TESTS.get(name) == request.node.originalname:
            request.node.add_marker(pytest.mark.xfail(reason=defect, strict=True))


CASE_TESTS = {
    "identity": "test_identity",
    "channels": "test_every_channel_reads_with_its_profile_type_and_unit",
    "subscription_order": "test_subscription_delivers_in_time_order_per_channel",
    "state_commands": "test_every_state_command_reaches_its_target_state",
    "abort_clear_reset": "test_abort_clear_and_reset",
    "prompt_blocks": "test_a_prompt_blocks_the_run_until_answered",
    "alarms": "test_every_profile_alarm_is_raised_acknowledged_and_cleared",
    "replay": "test_a_capture_replays_through_the_adapter",
    "zero_loss": "test_nothing_is_lost_across_dropped_links",
    "sample_seq": "test_sample_seq_is_gapless_exactly_when_nothing_was_lost",
}
"""Which test holds each case of `cellauto.adapter.CASES`."""


class Rig:
    """A simulator and the real adapter connected to it, plus helpers for the cases."""

    def __init__(self, kind: str, conformance: Conformance) -> None:
        self.kind = kind
        self.conformance = conformance
        self.profile = load_profile(kind)
        self.sim: SimHandle | None = None
        self.devices: list[Device] = []

    async def start(self, *, faults: str | None = None, seed: int = 3) -> SimHandle:
        self.sim = await start_simulator(self.kind, seed=seed, faults=faults)
        return self.sim

    def truth_states(self) -> list[str]:
        """The cellauto states the simulated device passed through, from its ground truth."""
        assert self.sim is not None
        tables = load_protocol(self.kind)
        states = []
        for event in self.sim.truth.events:
            if event.kind.lower() == "state":
                vendor = event.data.get("state") or event.data.get("State")
                state = tables.state(str(vendor))
                assert state is not None, f"{self.kind}: unknown vendor state {vendor!r}"
                states.append(str(state))
        return states

    async def connect(self, **options: str) -> Device:
        assert self.sim is not None
        query = urlencode(dict(self.conformance.test_options) | options)
        url = self.sim.url + (f"?{query}" if query else "")
        device = await connect(url, device_id=f"{self.kind}-c", time=self.sim.time)
        self.devices.append(device)
        return device

    async def close(self) -> None:
        for device in reversed(self.devices):
            await device.close()
        if self.sim is not None:
            await self.sim.stop()

    def program(self, hours: float | None = None) -> tuple[ProgramTemplate, dict[str, Any]]:
        """The declared conformance program (its timed steps shrunk to `hours` if given) and
        values for its required parameters."""
        template = self.profile.program(self.conformance.program)
        if hours is not None:
            total = sum(s.duration_seconds or 0 for s in template.steps)
            steps = [
                step
                if step.duration is None
                else ProgramStep.model_validate(
                    step.model_dump()
                    | {"duration": Q(step.duration_seconds * hours * 3600 / total, "s")}
                )
                for step in template.steps
            ]
            data = template.model_dump(exclude={"content_hash"}) | {
                "steps": steps,
                "name": f"{template.name} short",
            }
            template = ProgramTemplate.model_validate(data)
        params: dict[str, Any] = {}
        for spec in template.parameters:
            if not spec.required or spec.default is not None:
                continue
            if spec.choices:
                params[spec.name] = spec.choices[0]
            elif spec.dtype in ("float", "int"):
                value = spec.minimum if spec.minimum is not None else 1
                params[spec.name] = Q(value, spec.unit or "1")
            elif spec.dtype == "bool":
                params[spec.name] = True
            else:
                params[spec.name] = "conformance"
        return template, params


@pytest.fixture
async def rig(kind: str, conformance: Conformance) -> AsyncIterator[Rig]:
    rig = Rig(kind, conformance)
    try:
        yield rig
    finally:
        await rig.close()


async def next_event(feed: Feed[Event], match: Callable[[Event], bool]) -> Event:
    """The next event of `feed` that matches (no wall-clock bound: the suite's timeout is)."""
    async for event in feed:
        if match(event):
            return event
    raise AssertionError("the event feed ended")


async def reach(device: Device, feed: Feed[Event], target: State) -> None:
    """Wait until `device` reports `target` (already there counts)."""
    if device.state == target:
        return
    await next_event(
        feed, lambda e: e.kind is EventKind.STATE_CHANGED and e.to_state == str(target)
    )


def answering(device: Device, feed: Feed[Event]) -> asyncio.Task[None]:
    """A task answering every operator prompt with its first choice (or "done")."""

    async def answer() -> None:
        async for event in feed:
            if event.kind is EventKind.PROMPT:
                choices = event.data.get("choices") or ["done"]
                assert isinstance(choices, list)
                await device.answer_prompt(str(event.data["prompt_id"]), str(choices[0]), "cf")

    return asyncio.create_task(answer())
