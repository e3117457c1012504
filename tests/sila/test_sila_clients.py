"""An observable RunProgram cancelled midway by the library's own client, and the generic
adapter against a SiLA server that knows nothing of cellauto."""

from __future__ import annotations

import asyncio
import json
import time
from queue import Queue
from typing import Any
from urllib.parse import urlparse

import pytest
from sila2.client import SilaClient
from sila2.framework import Feature as SilaFeature
from sila2.server import FeatureImplementationBase

from cellauto.errors import CellautoError
from cellauto.profiles import load_profile
from cellauto.registry import connect
from cellauto.schema.quantity import Q
from cellauto.sila.fdl import Command, Element, Feature, Property, basic, with_set, with_unit
from cellauto.sila.server import free_port, new_sila_server
from cellauto_simulators.licellgrow import LiCellGrowSimulator


async def test_an_independent_client_cancels_an_observable_run_midway() -> None:
    sim = await LiCellGrowSimulator.launch(
        load_profile("licellgrow"), {"insecure": "1"}, default_speed="max"
    )
    try:
        url = urlparse(sim.url)

        def client_session() -> tuple[str, str]:
            client = SilaClient(url.hostname or "", url.port or 0, insecure=True)
            try:
                client.DeviceIdentity.Identity.get()  # virtual time starts with a client
                run = client.ProgramController.RunProgram(
                    Program="T-cell expansion", Parameters="{}"
                )
                while not client.OperatorPrompts.OpenPrompts.get():
                    time.sleep(0.01)  # polling a condition, not standing in for one
                client.CancelController.CancelCommand(CommandExecutionUUID=str(run.execution_uuid))
                while not run.done:
                    time.sleep(0.01)
                responses = run.get_responses()
                return responses.Outcome, responses.Result
            finally:
                client.close()

        outcome, result = await asyncio.to_thread(client_session)
        assert outcome == "stopped"
        assert json.loads(result)["outcome"] == "stopped"
        assert [e.data["state"] for e in sim.truth.events if e.kind == "state"][-1] == "Stopped"
    finally:
        await sim.stop()


THERMOMETER = Feature(
    "Thermometer",
    "A thermometer that knows nothing of cellauto.",
    originator="org.example",
    category="tests",
    commands=(
        Command("Ping", "Answer.", responses=(Element("Answer", "pong", basic("String")),)),
        Command(
            "SetTarget",
            "Set the target temperature.",
            parameters=(
                Element("Target", "The target.", with_unit("mK")),
                Element("Mode", "How fast.", with_set(["Fast", "Slow"])),
                Element("Steps", "In how many steps.", basic("Integer")),
            ),
            responses=(Element("Echo", "What arrived.", basic("String")),),
        ),
    ),
    properties=(
        Property("Temperature", "The temperature.", with_unit("Cel")),
        Property("Setpoint", "The setpoint (not observable).", with_unit("Cel"), False),
    ),
)


async def test_the_generic_adapter_maps_a_foreign_servers_properties_and_commands() -> None:
    server = new_sila_server(
        server_name="Thermometer",
        server_type="TestThermometer",
        server_description="a test",
        server_version="1.0",
        server_vendor_url="https://example.org",
    )
    feature = SilaFeature(THERMOMETER.xml())
    queue: Queue[Any] = Queue()
    impl = FeatureImplementationBase(server)
    impl._Temperature_producer_queue = queue  # type: ignore[attr-defined]
    impl.Temperature_on_subscription = lambda *, metadata: None  # type: ignore[attr-defined]
    impl.Ping = lambda *, metadata: "pong"  # type: ignore[attr-defined]
    setpoints = iter([36.0, 36.5])
    impl.get_Setpoint = lambda *, metadata: next(setpoints)  # type: ignore[attr-defined]
    impl.SetTarget = lambda target, mode, steps, *, metadata: f"{target:g} {mode} {steps}"  # type: ignore[attr-defined]
    server.set_feature_implementation(feature, impl)
    port = free_port()
    queue.put(36.6)
    await asyncio.to_thread(server.start_insecure, "127.0.0.1", port, enable_discovery=False)
    try:
        device = await connect(f"sila+grpc://127.0.0.1:{port}?insecure=1")
        try:
            assert device.info.model == "TestThermometer"
            assert device.profile.channel("thermometer.temperature").unit == "Cel"
            feed = device.subscribe(["thermometer.temperature"])
            queue.put(37.2)
            async for sample in feed:
                if sample.value == 37.2:
                    break
            assert (await device.read("thermometer.temperature")).value == 37.2
            setpoint = device.profile.channel("thermometer.setpoint")
            assert setpoint.unit == "Cel"
            assert "read on demand" in setpoint.description
            assert [(await device.read("thermometer.setpoint")).value for _ in "ab"] == [36.0, 36.5]
            result = await device.command("thermometer__ping")
            assert result.data == {"Answer": "pong"}
            (command,) = [c for c in device.profile.commands if c.name == "thermometer__set_target"]
            declared = {p.name: p for p in command.parameters}
            assert declared["target"].unit == "mK"
            assert declared["mode"].choices == ["Fast", "Slow"]
            assert declared["steps"].dtype == "int"
            result = await device.command(
                "thermometer__set_target", target=Q(0.5, "K"), mode="Slow", steps=3
            )
            assert result.data == {"Echo": "500 Slow 3"}  # sent in the server's unit
            with pytest.raises(CellautoError, match="set_target"):
                await device.command(
                    "thermometer__set_target", target=Q(1, "mL"), mode="Slow", steps=1
                )
        finally:
            await device.close()
    finally:
        await asyncio.to_thread(server.stop, 0.5)
