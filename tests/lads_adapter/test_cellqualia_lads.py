"""The CellQualia simulator as a LADS server, seen by clients that know nothing of CellQualia:
the generic LADS adapter (it builds a profile by browsing and runs a program) and an independent
LADS client (node-opcua). One simulator for the module."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization

import cellauto
from cellauto.gateway.security import make_certificate
from cellauto.lads.units import unece_unit_id
from cellauto.profiles import load_profile
from cellauto.schema import EventKind, Quantity
from cellauto.sim import SimHandle, start_simulator
from node_opcua import NODE_DIR, lads_browser

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sim() -> AsyncIterator[SimHandle]:
    handle = await start_simulator("cellqualia", seed=5)
    yield handle
    await handle.stop()


def generic(sim: SimHandle) -> str:
    return sim.url.replace("cellqualia+opcua://", "lads+opcua://")


async def test_the_generic_adapter_builds_the_profile_by_browsing_and_runs_a_program(
    sim: SimHandle,
) -> None:
    profile = load_profile("cellqualia")
    async with await cellauto.connect(generic(sim), device_id="cq", time=sim.time) as device:
        assert device.profile.device == "lads"
        assert device.info.serial_number == "CQ-SIM-0001"
        browsed = {u.name: {c.name: c for c in u.channels} for u in device.profile.functional_units}
        for unit in profile.functional_units:
            for channel in unit.channels:
                found = browsed[unit.name][channel.name]
                assert found.kind == channel.kind
                assert found.unit == (channel.unit if channel.dtype in ("float", "int") else None)
                if channel.eu_range is not None:
                    assert found.eu_range is not None
                    assert found.eu_range.low == channel.eu_range.low
                    assert found.eu_range.high == channel.eu_range.high
        assert {p.name for p in device.profile.programs} == {p.name for p in profile.programs}
        assert str(device.state) == "Stopped"

        feed = device.events()
        run = await device.start_program("Isolator decontamination")
        steps: list[str] = []

        async def operator() -> None:
            async for event in feed:
                if event.kind is EventKind.PROMPT:
                    await device.answer_prompt(str(event.data["prompt_id"]), "done", "olga")
                elif event.kind is EventKind.STEP_STARTED:
                    steps.append(event.message)

        answering = asyncio.create_task(operator())
        result = await run
        feed.close()
        await answering
        assert result.outcome == "complete"
        assert steps == [s.name for s in profile.program("Isolator decontamination").steps]
        assert result.properties["morphology_flagged"] is False
        assert isinstance(result.properties["final_confluency"], Quantity)
        state = await device.read("isolator.decontamination_state")
        assert state.value == "complete"
        h2o2 = await device.read("isolator.h2o2_concentration")
        assert h2o2.unit == "[ppm]"


async def test_a_glove_breach_is_an_alarm_condition_acknowledged_through_lads(
    sim: SimHandle,
) -> None:
    async with await cellauto.connect(generic(sim), device_id="cq", time=sim.time) as device:
        feed = device.events()
        sim.raise_alarm("glove_breach")
        raised = None
        async for event in feed:
            if event.kind is EventKind.ALARM_RAISED:
                raised = event
                break
        assert raised is not None
        alarm = device.alarm(str(raised.data["alarm_id"]))
        assert alarm.code == "glove_breach"
        assert str(alarm.severity) == "critical"
        await device.acknowledge(alarm.alarm_id, "olga")
        assert device.alarm(alarm.alarm_id).acknowledged
        sim.clear_alarm("glove_breach")
        async for event in feed:
            if event.kind is EventKind.ALARM_CLEARED:
                break
        assert not device.alarm(alarm.alarm_id).active
        assert (await device.read("isolator.glove_integrity")).value is True


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def node_client() -> Path:
    return await lads_browser()


async def test_an_independent_lads_client_reads_units_states_and_values(
    sim: SimHandle, node_client: Path, tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node is not None
    uri = "urn:test:node-opcua"
    cert, key = make_certificate(uri, common_name="node-opcua test client", client=True)
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    sim.gateway.trust.trust(cert)  # type: ignore[attr-defined]  # the client's application
    url = sim.url.replace("cellqualia+opcua://", "opc.tcp://")
    process = await asyncio.create_subprocess_exec(
        node,
        str(node_client),
        url,
        str(cert_file),
        str(key_file),
        uri,
        cwd=NODE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    line = next(x for x in out.decode().splitlines() if x.startswith("LADS-JSON "))
    found = json.loads(line.removeprefix("LADS-JSON "))
    units = found["devices"]["cellqualia-sim"]["units"]
    assert set(units) == {"isolator", "incubator", "imaging", "handling"}
    assert units["incubator"]["state"] in ("Stopped", "Running")
    temperature = units["incubator"]["functions"]["temperature"]
    assert temperature["unitId"] == unece_unit_id("CEL")
    assert isinstance(temperature["value"], float)
    assert units["isolator"]["functions"]["h2o2_concentration"]["unitId"] == unece_unit_id("59")
