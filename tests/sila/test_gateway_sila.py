"""`serve_sila`: a simulated Prodigy behind the SiLA gateway, seen by the library's own client
and by cellauto's generic SiLA adapter; its clients' commands in the batch record."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sila2.client import SilaClient
from sila2.framework import DefinedExecutionError, SilaError

import cellauto
from cellauto.gateway.sila import serve_sila
from cellauto.profiles import load_profile
from cellauto.records import open_batch
from cellauto.registry import connect
from cellauto_simulators.licellgrow import LiCellGrowSimulator


async def test_a_simulated_prodigy_behind_the_sila_gateway(tmp_path: Path) -> None:
    prodigy = await connect("prodigy+sim://?speed=max&seed=1")
    try:
        async with serve_sila([prodigy], state=tmp_path, port=0) as gateway:
            server = gateway.servers[0]
            assert server.certificate is not None
            ca = tmp_path / "sila" / f"{server.server_uuid}.pem"

            def independent() -> tuple[str, str]:
                client = SilaClient("127.0.0.1", server.port, root_certs=ca.read_bytes())
                try:
                    return (
                        client.SiLAService.ServerName.get(),
                        client.DeviceStateController.State.get(),
                    )
                finally:
                    client.close()

            name, state = await asyncio.to_thread(independent)
            assert name == f"cellauto {prodigy.device_id}"
            assert state == str(prodigy.state)
            mirror = await connect(f"sila+grpc://{server.address}?ca={ca}")
            try:
                assert mirror.profile.device == "prodigy"
                assert mirror.info == prodigy.info
                channel = next(iter(prodigy.profile.channels()))
                assert (await mirror.read(channel)).unit == (await prodigy.read(channel)).unit
            finally:
                await mirror.close()
    finally:
        await prodigy.close()


class NeverAnswer:
    """A prompt policy that leaves prompts to the plant system."""

    async def answer(self, request: Any) -> Any:
        await asyncio.Event().wait()


async def test_commands_through_the_gateway_are_audit_entries_of_the_batch(tmp_path: Path) -> None:
    """The gateway starts inside the batch (it audits batches already open), and the SiLA
    client, which the core features do not identify, is the actor."""
    async with cellauto.Batch(
        "SILA-1",
        product="test",
        operator="alice",
        records=tmp_path,
        alarm_policy=None,
        prompts=NeverAnswer(),
        signatures_for=(),
    ) as batch:
        device = await batch.connect("prodigy+sim://?speed=max", device_id="prodigy-9")
        async with serve_sila([device], state=tmp_path, port=0, insecure=True) as gateway:
            port = gateway.servers[0].port

            def commands() -> str:
                client = SilaClient("127.0.0.1", port, insecure=True)
                try:
                    client.DeviceStateController.Reset()
                    run = client.ProgramController.RunProgram(Program="no such", Parameters="{}")
                    while not run.done:
                        time.sleep(0.01)  # polling a condition, not standing in for one
                    try:
                        run.get_responses()
                    except DefinedExecutionError as exc:
                        return str(exc)
                    return "accepted"
                finally:
                    client.close()

            refusal = await asyncio.to_thread(commands)
            assert "no such" in refusal
    audit = open_batch(tmp_path / "SILA-1").audit_entries()
    # one entry per gateway command: the batch does not also write it as the script's
    assert [e.action for e in audit if e.reason == "by the script"] == []
    entries = [e for e in audit if e.action.startswith("gateway.")]
    assert [(e.actor, e.action, e.object, e.reason) for e in entries] == [
        (
            "sila:client",
            "gateway.DeviceStateController.Reset",
            "prodigy-9",
            "through the SiLA 2 gateway",
        ),
        (
            "sila:client",
            "gateway.ProgramController.RunProgram",
            "prodigy-9",
            "through the SiLA 2 gateway",
        ),
    ]
    assert [e.value for e in entries] == [
        {"arguments": {}, "outcome": "ok"},
        {
            "arguments": {"Program": "no such", "Parameters": "{}"},
            "outcome": f"refused: {refusal.removeprefix('ProgramRejected: ')}",
        },
    ]


async def test_commands_the_lock_refuses_are_audit_entries_too(tmp_path: Path) -> None:
    """Client A holds the lock; client B's commands, without a LockIdentifier and with its own,
    are refused by the library before the device sees them, and each is an audit entry."""
    async with cellauto.Batch(
        "SILA-2",
        product="test",
        operator="alice",
        records=tmp_path,
        alarm_policy=None,
        prompts=NeverAnswer(),
        signatures_for=(),
    ) as batch:
        device = await batch.connect("prodigy+sim://?speed=max", device_id="prodigy-8")
        async with serve_sila([device], state=tmp_path, port=0, insecure=True) as gateway:
            port = gateway.servers[0].port

            def clients() -> list[str]:
                a = SilaClient("127.0.0.1", port, insecure=True)
                b = SilaClient("127.0.0.1", port, insecure=True)
                refused = []
                try:
                    a.LockController.LockServer(LockIdentifier="lock-a", Timeout=600)
                    for metadata in ([], [b.LockController.LockIdentifier("lock-b")]):
                        try:
                            b.DeviceStateController.Reset(metadata=metadata)
                        except SilaError as exc:
                            refused.append(type(exc).__name__)
                    a.DeviceStateController.Reset(
                        metadata=[a.LockController.LockIdentifier("lock-a")]
                    )
                    a.LockController.UnlockServer(LockIdentifier="lock-a")
                    b.DeviceStateController.Reset()
                finally:
                    a.close()
                    b.close()
                return refused

            refused = await asyncio.to_thread(clients)
    assert refused == ["InvalidMetadata", "DefinedExecutionError"]
    audit = open_batch(tmp_path / "SILA-2").audit_entries()
    entries = [e for e in audit if e.action.startswith("gateway.")]
    assert [(e.actor, e.action, e.object) for e in entries] == [
        ("sila:client", "gateway.DeviceStateController.Reset", "prodigy-8")
    ] * 4
    assert [e.value for e in entries] == [
        {"arguments": {}, "outcome": "refused: locked by another client"},
        {"arguments": {}, "outcome": "refused: locked by another client"},
        {"arguments": {}, "outcome": "ok"},
        {"arguments": {}, "outcome": "ok"},
    ]


async def test_a_read_right_after_connect_answers_before_the_channels_next_sample(
    tmp_path: Path,
) -> None:
    """The device published its channels before the gateway served it; the next value of an
    hourly channel is an hour of (real-time) virtual time away, yet a read answers now."""
    sim = await LiCellGrowSimulator.launch(load_profile("licellgrow"), {"seed": "5"})
    channel = "metabolite_sensor.glucose_consumption_rate"
    period = sim.profile.channel(channel).sample_period
    assert period is not None
    try:
        device = await connect(sim.url, time=sim.time)
        try:
            async with serve_sila([device], state=tmp_path, port=0, insecure=True) as gateway:
                started = sim.clock.monotonic()
                address = gateway.servers[0].address
                mirror = await connect(f"sila+grpc://{address}?insecure=1&timeout=10")
                try:
                    sample = await mirror.read(channel)
                finally:
                    await mirror.close()
                assert sample.value == (await device.read(channel)).value
                assert sim.clock.monotonic() - started < period.to("s").value
        finally:
            await device.close()
    finally:
        await sim.stop()
