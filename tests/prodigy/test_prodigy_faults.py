"""Wire faults during a whole TCT run at speed=max, over TCP and a pty: repeated cable pulls,
line noise (corrupt frames), dropped bytes and a stalled device. Zero loss: the adapter applies
every event the device logged, in event-seq order, and sees every sample."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from prodigy_helpers import wait_for

from cellauto.schema import EventKind
from cellauto.sim.servers.stream import PtyServer, TcpServer
from cellauto_adapters.prodigy import ProdigyAdapter
from cellauto_simulators.prodigy import ProdigySimulator

FAULTS = ",".join(
    [
        "disconnect@6h:10m",
        "corrupt@1d=5",
        "disconnect@2d:1h",
        "drop_bytes@3d=40",
        "corrupt@4d=3",
        "disconnect@5d:30m",
        "stall@6d:20m",
        "drop_bytes@7d=7",
        "disconnect@8d:2h",
        "disconnect@10d:5m",
        "corrupt@11d=2",
    ]
)


async def test_zero_loss_by_event_seq_across_cable_pulls(
    start_sim: Callable[..., Awaitable[ProdigySimulator]],
    connect: Callable[..., Awaitable[ProdigyAdapter]],
) -> None:
    sim = await start_sim(faults=FAULTS, seed="3")
    device = await connect(sim)
    first = (device.sequencer.last or 0) + 1
    samples = device.subscribe(maxsize=1_000_000)
    events = device.events(maxsize=1_000_000)
    run = await device.start_program("TCT", {})
    connection = []

    async def operator() -> None:
        async for event in events:
            if event.kind == EventKind.PROMPT:
                await device.answer_prompt(str(event.data["prompt_id"]), "done", "alice")
            elif event.kind == EventKind.CONNECTION_CHANGED:
                connection.append(event.data["state"])

    task = asyncio.create_task(operator())
    try:
        result = await run  # simulated time: pytest's timeout guards a hang
        await wait_for(lambda: device.sequencer.last == sim.device.event_seq)
    finally:
        task.cancel()
    assert result.outcome == "complete"
    assert device.sequencer.lost == 0
    logged = {e.seq: e.kind for e in sim.truth.events if e.seq >= first}
    samples.close()
    got = [s async for s in samples]
    published = [e.data["ch"] for e in sim.truth.events if e.seq >= first and e.kind == "SAMPLE"]
    assert [s.channel for s in got] == published  # every SAMPLE logged, in order
    for channel in set(published):  # and Sample.seq gapless per channel: nothing was lost
        seqs = [s.seq for s in got if s.channel == channel]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert sim.device.event_seq - first + 1 == len(logged)
    assert device.sequencer.read_backs >= 5  # losses happened and were read back from the log
    if "tcp" in sim.url:
        assert connection.count("disconnected") >= 3  # the cable pulls were seen as such
    assert device.framing_errors > 0  # the noise reached the adapter
    read_backs, bad = device.sequencer.read_backs, device.framing_errors
    print(f"read-backs {read_backs}, bad frames {bad}, {connection}")


async def test_a_cable_pulled_for_a_real_second_is_noticed_and_read_back(
    sim: ProdigySimulator, device: ProdigyAdapter
) -> None:
    first = (device.sequencer.last or 0) + 1
    samples = device.subscribe(maxsize=1_000_000)
    server = sim.server
    assert isinstance(server, TcpServer | PtyServer)
    await server.unplug()
    await asyncio.sleep(1.0)  # five heartbeats: the adapter declares the link lost
    await server.plug()
    target = sim.device.event_seq
    await wait_for(lambda: (device.sequencer.last or 0) >= target, 10)
    assert device.sequencer.read_backs >= 1
    assert device.sequencer.lost == 0
    samples.close()
    got = [s.channel async for s in samples]
    logged = [
        e.data["ch"] for e in sim.truth.events if e.kind == "SAMPLE" and first <= e.seq <= target
    ]
    assert got[: len(logged)] == logged
