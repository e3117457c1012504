"""The SiLA gateway against a minimal SiLA server serving the same values, in one run, read by the
same `sila2` client (issue 19: each ratio >= 0.5).

Run: .venv/bin/python benchmarks/sila_gateway.py [reads] [updates]. The gateway serves a
MockDevice with the Prodigy profile, so what is measured is the gateway, not a simulator; the
minimal server serves the same channel feature and ProgramController from plain queues. Both
plain gRPC on loopback (TLS would cost both sides alike).

- reads: ``get()`` of one channel property (the library subscribes and takes the first value);
- updates: an observable RunProgram whose server sends one progress update and one step
  (intermediate response) at a time; the client acknowledges each step before the next is sent,
  so the rate is that of one update in flight, end to end, and none are coalesced.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from queue import Queue
from typing import Any

from sila2.client import SilaClient
from sila2.framework import Feature as SilaFeature
from sila2.server import FeatureImplementationBase, SilaServer

import cellauto
from cellauto.gateway.sila import serve_sila
from cellauto.mock import MockDevice
from cellauto.schema import EventKind, Result
from cellauto.sila.fdl import channel_feature, load_feature
from cellauto.sila.server import free_port, new_sila_server

CHANNEL, PROPERTY = "chamber.temperature", "ChamberTemperature"
ROUNDS = 5


def minimal_server(mock: MockDevice, acks: Queue[int], updates: int) -> SilaServer:
    """A SiLA server knowing nothing of cellauto's devices: the Prodigy channel feature from
    queues holding the mock's values, and a RunProgram sending `updates` steps."""
    server = new_sila_server(
        server_name="minimal",
        server_type="Minimal",
        server_description="the benchmark's direct server",
        server_version="1.0",
        server_vendor_url="https://example.org",
    )
    channels, names = channel_feature(mock.profile)
    impl = FeatureImplementationBase(server)
    for ident, name in names.items():
        queue: Queue[Any] = Queue()
        if name == CHANNEL:
            queue.put(37.0)
        setattr(impl, f"_{ident}_producer_queue", queue)
        setattr(impl, f"{ident}_on_subscription", lambda *, metadata: None)
    server.set_feature_implementation(SilaFeature(channels.xml()), impl)

    def run_program(program: str, parameters: str, *, metadata: Any, instance: Any) -> Any:
        instance.begin_execution()
        acks.get()  # the client is listening
        for step in range(1, updates + 1):
            instance.progress = step / updates
            instance.estimated_remaining_time = timedelta(minutes=updates - step)
            instance.send_intermediate_response({"StepNumber": step, "StepName": f"step {step}"})
            acks.get()
        return {"Outcome": "complete", "Result": "{}"}

    programs = FeatureImplementationBase(server)
    programs.RunProgram = run_program  # type: ignore[attr-defined]
    programs.get_Programs = lambda *, metadata: ["TCT"]  # type: ignore[attr-defined]
    program_feature = SilaFeature(load_feature("ProgramController"))
    for prop in program_feature._observable_properties:
        queue = Queue()
        queue.put(0.0)
        setattr(programs, f"_{prop}_producer_queue", queue)
        setattr(programs, f"{prop}_on_subscription", lambda *, metadata: None)
    server.set_feature_implementation(program_feature, programs)
    return server


def reads_per_second(client: Any, reads: int) -> float:
    prop = getattr(client.ProdigyChannels, PROPERTY)
    for _ in range(10):
        prop.get()
    start = time.perf_counter()
    for _ in range(reads):
        prop.get()
    return reads / (time.perf_counter() - start)


def updates_per_second(client: Any, acks: Queue[int], updates: int) -> float:
    """One run of `updates` steps, each acknowledged (through `acks`) before the next."""
    seen: list[int] = []
    run = client.ProgramController.RunProgram(Program="TCT", Parameters="{}")
    steps = run.subscribe_to_intermediate_responses()

    def got(response: Any) -> None:
        seen.append(response.StepNumber)
        acks.put(response.StepNumber)

    steps.add_callback(got)
    start = time.perf_counter()
    acks.put(0)
    while len(seen) < updates:
        time.sleep(0.0005)  # polling a condition, not standing in for one
    elapsed = time.perf_counter() - start
    while not run.done:
        time.sleep(0.0005)
    steps.cancel()
    assert seen == list(range(1, updates + 1)), "an update was lost or coalesced"
    return updates / elapsed


async def drive(mock: MockDevice, acks: Queue[int], updates: int) -> None:
    """Play the device's side of one gateway run: a step per acknowledgement, then the end."""
    events = mock.events()
    async for event in events:
        if event.kind is EventKind.PROGRAM_STARTED:
            break
    events.close()
    await mock.inject_state("Running/Execute")
    await asyncio.to_thread(acks.get)
    for step in range(1, updates + 1):
        await mock.report_progress(
            progress=step / updates,
            remaining=timedelta(minutes=updates - step),
            step_name=f"step {step}",
            step_number=step,
        )
        await asyncio.to_thread(acks.get)
    run = mock.current_run
    assert run is not None
    now = datetime.now(UTC)
    await mock.inject_result(
        Result(
            device_id=mock.device_id,
            device_program_run_id=run.device_program_run_id,
            program=run.program,
            program_version=run.program_version,
            template_hash=run.template_hash,
            started=now,
            stopped=now,
            outcome="complete",
            total_runtime=timedelta(0),
        )
    )
    await mock.inject_state("Running/Complete")
    await mock.inject_state("Stopped")


async def main(reads: int, updates: int) -> None:
    logging.getLogger("sila2").setLevel(logging.ERROR)
    logging.getLogger("cellauto").setLevel(logging.ERROR)
    mock = await cellauto.connect("prodigy+serial:///dev/null", mock=True, device_id="prodigy-1")
    assert isinstance(mock, MockDevice)
    gateway_acks: Queue[int] = Queue()
    direct_acks: Queue[int] = Queue()
    direct = minimal_server(mock, direct_acks, updates)
    port = free_port()
    await asyncio.to_thread(direct.start_insecure, "127.0.0.1", port, enable_discovery=False)
    rates: dict[str, list[float]] = {k: [] for k in ("gw reads", "reads", "gw updates", "updates")}
    with tempfile.TemporaryDirectory() as state:
        async with serve_sila([mock], state=Path(state), port=0, insecure=True) as gateway:
            mock.inject_sample(CHANNEL, 37.0)  # the gateway serves what the device sends
            through = SilaClient("127.0.0.1", gateway.servers[0].port, insecure=True)
            plain = SilaClient("127.0.0.1", port, insecure=True)
            try:
                for _ in range(ROUNDS):
                    measure: Callable[..., float] = reads_per_second
                    rates["gw reads"].append(await asyncio.to_thread(measure, through, reads))
                    rates["reads"].append(await asyncio.to_thread(measure, plain, reads))
                    driver = asyncio.create_task(drive(mock, gateway_acks, updates))
                    await asyncio.sleep(0)  # it listens before the client starts the run
                    rates["gw updates"].append(
                        await asyncio.to_thread(updates_per_second, through, gateway_acks, updates)
                    )
                    await driver
                    rates["updates"].append(
                        await asyncio.to_thread(updates_per_second, plain, direct_acks, updates)
                    )
            finally:
                through.close()
                plain.close()
    await asyncio.to_thread(direct.stop, 0.5)
    await mock.close()
    best = {k: max(v) for k, v in rates.items()}
    print(f"best of {ROUNDS} rounds, same sila2 client, plain gRPC on loopback")
    print(f"property reads   gateway {best['gw reads']:7.0f}/s  minimal {best['reads']:7.0f}/s")
    print(f"  ratio gateway/direct: {best['gw reads'] / best['reads']:.2f} (target >= 0.5)")
    print(f"command updates  gateway {best['gw updates']:7.0f}/s  minimal {best['updates']:7.0f}/s")
    print(f"  ratio gateway/direct: {best['gw updates'] / best['updates']:.2f} (target >= 0.5)")


if __name__ == "__main__":
    arguments = [int(a) for a in sys.argv[1:3]]
    asyncio.run(main(*(arguments + [300, 200][len(arguments) :])))
