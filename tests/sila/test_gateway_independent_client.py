"""The `sila2` library's own client (not cellauto's adapter) finds the SiLA gateway by mDNS on
loopback, reads SiLAService, locks the server, runs a program on a simulated Prodigy through it
(progress, remaining time, step responses), cancels a second run, and a second client is refused
while the lock is held."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sila2.client import SilaClient
from sila2.framework import SilaError

from cellauto.gateway.sila import serve_sila
from cellauto.registry import connect
from cellauto.sila.server import PLACEHOLDER_VENDOR_URL

LOCK = "lock-of-client-a"


@dataclass
class Seen:
    """What the independent client saw."""

    service: dict[str, Any] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)
    updates: list[tuple[float, timedelta]] = field(default_factory=list)
    steps: list[tuple[int, str]] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=list)


def wait_for_prompt(client: Any, run: Any) -> None:
    while not client.OperatorPrompts.OpenPrompts.get():
        if run.done:
            run.get_responses()  # raises what ended it
            raise AssertionError("the run ended without a prompt")
        time.sleep(0.01)  # polling a condition, not standing in for one


def scheduler(name: str, ca: bytes, seen: Seen) -> None:
    """A SiLA client knowing the gateway only by name: discovers it, locks it, commands it."""
    a = SilaClient.discover(server_name=name, root_certs=ca, timeout=60)
    b = SilaClient(a.address, a.port, root_certs=ca)
    try:
        seen.service = {
            "name": a.SiLAService.ServerName.get(),
            "type": a.SiLAService.ServerType.get(),
            "vendor": a.SiLAService.ServerVendorURL.get(),
            "features": a.SiLAService.ImplementedFeatures.get(),
        }
        a.LockController.LockServer(LockIdentifier=LOCK, Timeout=600)
        lock = [a.LockController.LockIdentifier(LOCK)]
        for refused in (
            lambda: b.ProgramController.RunProgram(Program="CD34", Parameters="{}"),
            lambda: b.DeviceStateController.Abort(),
        ):
            try:
                refused()
            except SilaError as exc:
                seen.refused.append(type(exc).__name__)
        seen.states.append(b.DeviceStateController.State.get())  # reads stay open

        run = a.ProgramController.RunProgram(Program="CD34", Parameters="{}", metadata=lock)
        # a new subscriber gets the latest response first: step 1, which waits on a prompt
        steps = run.subscribe_to_intermediate_responses()
        steps.add_callback(lambda r: seen.steps.append((r.StepNumber, r.StepName)))
        answered: set[str] = set()
        while not run.done:
            if run.progress is not None and run.estimated_remaining_time is not None:
                seen.updates.append((run.progress, run.estimated_remaining_time))
            for text in a.OperatorPrompts.OpenPrompts.get():
                prompt = json.loads(text)
                if prompt["prompt_id"] in answered:
                    continue  # the property still shows it: answered a moment ago
                answered.add(prompt["prompt_id"])
                a.OperatorPrompts.AnswerPrompt(
                    PromptId=prompt["prompt_id"], Answer='"done"', User="olga", metadata=lock
                )
            time.sleep(0.01)  # polling a condition, not standing in for one
        seen.outcomes.append(run.get_responses().Outcome)
        a.DeviceStateController.Reset(metadata=lock)

        second = a.ProgramController.RunProgram(Program="CD34", Parameters="{}", metadata=lock)
        wait_for_prompt(a, second)  # the run waits on its first prompt: cancel it there
        uuid = str(second.execution_uuid)
        try:
            b.CancelController.CancelCommand(CommandExecutionUUID=uuid)
        except SilaError as exc:
            seen.refused.append(type(exc).__name__)
        a.CancelController.CancelCommand(CommandExecutionUUID=uuid, metadata=lock)
        while not second.done:
            time.sleep(0.01)  # polling a condition, not standing in for one
        seen.outcomes.append(second.get_responses().Outcome)
        a.LockController.UnlockServer(LockIdentifier=LOCK)
    finally:
        a.close()
        b.close()


async def test_an_independent_client_discovers_locks_runs_and_cancels(tmp_path: Path) -> None:
    prodigy = await connect("prodigy+sim://?speed=max&seed=3", device_id="prodigy-sila")
    try:
        async with serve_sila([prodigy], state=tmp_path, port=0, discovery=True) as gateway:
            server = gateway.servers[0]
            assert server.certificate is not None
            seen = Seen()
            before = str(prodigy.state)
            await asyncio.to_thread(scheduler, "cellauto prodigy-sila", server.certificate, seen)
    finally:
        await prodigy.close()
    assert seen.service["name"] == "cellauto prodigy-sila"
    assert seen.service["type"] == "CellautoDevice"
    assert seen.service["vendor"] == PLACEHOLDER_VENDOR_URL
    assert {
        "org.silastandard/core/SiLAService/v1",
        "org.silastandard/core/LockController/v1",
        "org.silastandard/core/CancelController/v1",
        "org.cellauto/devices/ProgramController/v1",
    } <= set(seen.service["features"])
    # the locked server refuses the second client's run, abort and cancel
    assert seen.refused == ["InvalidMetadata"] * 3
    assert seen.outcomes == ["complete", "stopped"]
    assert seen.states == [before]  # the second client still reads
    progress = [p for p, _ in seen.updates]
    assert progress == sorted(progress)
    assert progress[-1] > progress[0]
    remaining = [r for _, r in seen.updates]
    assert remaining[0] > remaining[-1] >= timedelta(0)
    cd34 = prodigy.profile.program("CD34")
    assert seen.steps == [(n, step.name) for n, step in enumerate(cd34.steps, start=1)]
