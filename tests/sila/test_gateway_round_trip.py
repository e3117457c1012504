"""cellauto's generic SiLA 2 adapter (``sila+grpc://``) against the SiLA gateway serving a
simulated Prodigy: identity, channels, programs, and a program run seen through the gateway
compared with the same run seen by the direct connection the gateway serves. One gateway for
the module."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

import cellauto
from cellauto.gateway.sila import SilaGateway, serve_sila
from cellauto.schema import Event, EventKind, Quantity, Result

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SilaGateway]:
    prodigy = await cellauto.connect("prodigy+sim://?speed=max&seed=5", device_id="prodigy-1")
    try:
        async with serve_sila([prodigy], state=tmp_path_factory.mktemp("gw"), port=0) as served:
            yield served
    finally:
        await prodigy.close()


def sila_url(gateway: SilaGateway) -> str:
    """The gateway's server as the generic adapter's URL, trusting its kept certificate."""
    server = gateway.servers[0]
    assert server.certificate is not None
    return f"sila+grpc://{server.address}?ca={gateway.state / 'sila' / f'{server.server_uuid}.pem'}"


async def test_identity_channels_and_programs_are_the_direct_ones(gateway: SilaGateway) -> None:
    direct = gateway.servers[0].device
    async with await cellauto.connect(sila_url(gateway), device_id="prodigy-1") as sila:
        assert sila.info == direct.info
        assert sila.state == direct.state
        assert sila.profile.device == direct.profile.device
        served = sila.profile.channels()
        for name, channel in direct.profile.channels().items():
            assert (served[name].kind, served[name].dtype, served[name].unit) == (
                channel.kind,
                channel.dtype,
                channel.unit,
            ), name
        assert [p.name for p in sila.profile.programs] == [p.name for p in direct.profile.programs]
        sample = await sila.read("chamber.temperature")
        assert sample.unit == (await direct.read("chamber.temperature")).unit == "Cel"


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


async def test_a_run_through_the_gateway_matches_the_direct_connection(
    gateway: SilaGateway,
) -> None:
    direct = gateway.servers[0].device
    theirs: list[Event] = []
    ours: list[Event] = []
    seen_direct = direct.events()
    collecting = asyncio.create_task(collect(seen_direct, theirs))
    async with await cellauto.connect(sila_url(gateway), device_id="prodigy-1") as sila:
        seen = sila.events()
        run = await sila.start_program("CD34")

        async def operator() -> None:
            async for event in seen:
                ours.append(event)
                if event.kind is EventKind.PROMPT:
                    await sila.answer_prompt(str(event.data["prompt_id"]), "done", "olga")

        answering = asyncio.create_task(operator())
        result: Result = await run
        await sila.wait_for_state("Running/Complete", timeout=10)
        await direct.wait_for_state("Running/Complete", timeout=10)
        seen.close()
        seen_direct.close()
        await answering
        await collecting
        direct_run = direct.current_run
        assert direct_run is not None
        assert direct_run.user == "sila:client"
    # each kind of event in the same order; across kinds the SiLA client cannot order them
    # (states, prompts and steps come from separate observable properties and the run)
    for kind in {k for k, _ in story(theirs)}:
        mine = [text for k, text in story(ours) if k == kind]
        assert mine == [text for k, text in story(theirs) if k == kind], kind
    assert {k for k, _ in story(ours)} == {k for k, _ in story(theirs)}
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
