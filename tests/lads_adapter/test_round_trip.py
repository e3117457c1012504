"""The generic LADS adapter (``lads+opcua://``) against the LADS gateway serving a simulated
Prodigy: the profile it builds by browsing, and a program run seen through the gateway compared
with the same run seen by the direct connection the gateway serves. One gateway for the module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import cellauto
from cellauto.gateway import Gateway, Role, serve_lads
from cellauto.schema import Event, EventKind, Quantity, Result

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    prodigy = await cellauto.connect("prodigy+sim://?speed=max", device_id="prodigy-1")
    served = serve_lads(
        [prodigy], state=tmp_path_factory.mktemp("gw"), port=0, allow_unsecured_read=True
    )
    served.users.add("sam", Role.SUPERVISOR, "supervisor-pw")
    async with served:
        yield served
    await prodigy.close()


def lads_url(gateway: Gateway, user: str = "sam:supervisor-pw@") -> str:
    return gateway.url.replace("opc.tcp://", f"lads+opcua://{user}")


async def test_the_browsed_profile_has_the_served_units_channels_units_and_programs(
    gateway: Gateway,
) -> None:
    direct = gateway.devices[0]
    async with await cellauto.connect(lads_url(gateway, ""), device_id="p") as lads:
        assert lads.info.serial_number == direct.info.serial_number
        assert lads.info.manufacturer == direct.info.manufacturer
        assert lads.state == direct.state
        browsed = {u.name: u for u in lads.profile.functional_units}
        for unit in direct.profile.functional_units:
            channels = {c.name: c for c in browsed[unit.name].channels}
            for channel in unit.channels:
                found = channels[channel.name]
                assert found.kind == channel.kind
                if channel.dtype in ("float", "int"):
                    assert found.dtype == "float"  # LADS analog functions carry doubles
                    assert found.unit == channel.unit
                else:
                    assert found.dtype == channel.dtype
        assert [p.name for p in lads.profile.programs] == [p.name for p in direct.profile.programs]
        sample = await lads.read("chamber.temperature")
        assert sample.unit == "Cel"


async def test_no_user_cannot_start_a_program_and_says_why(gateway: Gateway) -> None:
    async with await cellauto.connect(lads_url(gateway, ""), device_id="p") as lads:
        with pytest.raises(cellauto.CommandRejected, match="BadUserAccessDenied"):
            await lads.start_program("TCT")


def story(events: list[Event]) -> list[tuple[str, str]]:
    """What a record's event table says happened, without ids and times."""
    kinds = {
        EventKind.STATE_CHANGED,
        EventKind.STEP_STARTED,
        EventKind.PROMPT,
        EventKind.PROMPT_ANSWERED,
        EventKind.PROGRAM_FINISHED,
    }
    return [
        (str(e.kind), e.to_state or e.message)
        for e in events
        if e.kind in kinds and e.to_state not in ("Running/Starting", "Running/Completing")
    ]


async def collect(feed: cellauto.Feed[Event], into: list[Event]) -> None:
    async for event in feed:
        into.append(event)


async def test_a_run_through_the_gateway_matches_the_direct_connection(gateway: Gateway) -> None:
    direct = gateway.devices[0]
    theirs: list[Event] = []
    ours: list[Event] = []
    seen_direct = direct.events()
    collecting = asyncio.create_task(collect(seen_direct, theirs))
    async with await cellauto.connect(lads_url(gateway), device_id="prodigy-1") as lads:
        seen = lads.events()
        run = await lads.start_program("TCT", supervisory_job_id="job-7")

        async def operator() -> None:
            async for event in seen:
                ours.append(event)
                if event.kind is EventKind.PROMPT:
                    await lads.answer_prompt(str(event.data["prompt_id"]), "done", "olga")

        answering = asyncio.create_task(operator())
        result: Result = await run
        await lads.wait_for_state("Running/Complete", timeout=10)
        await direct.wait_for_state("Running/Complete", timeout=10)
        seen.close()
        seen_direct.close()
        await answering
        await collecting
        direct_run = direct.current_run
        assert direct_run is not None
        assert direct_run.supervisory_job_id == "job-7"
        assert direct_run.user == "opcua:sam"
    # each kind of event in the same order; across kinds a LADS client cannot order them
    # (prompts, steps and states are separate variables of one subscription)
    for kind in {k for k, _ in story(theirs)}:
        mine = [text for k, text in story(ours) if k == kind]
        assert mine == [text for k, text in story(theirs) if k == kind], kind
    assert len(story(ours)) >= 10
    direct_operation = direct.operation
    assert direct_operation is not None
    direct_result = await direct_operation
    assert result.outcome == direct_result.outcome == "complete"
    assert result.started == direct_result.started
    assert result.stopped == direct_result.stopped
    assert set(result.properties) == set(direct_result.properties)
    for key, value in direct_result.properties.items():
        got = result.properties[key]
        if isinstance(value, Quantity):
            assert isinstance(got, Quantity)
            assert (got.value, got.unit) == (value.value, value.unit)
        else:
            assert got == value
