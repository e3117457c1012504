"""Programs over LADS: parameters travel in StartProgram's Properties (the CellQualia adapter
sends them, numbers in the template's unit; the simulator checks them against the template),
and a Result's files in its FileSet (the adapter downloads them through FileType)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.client.client import Client
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import UaStatusCodeError

import cellauto
from cellauto import Q
from cellauto.driver import RunAborted
from cellauto.schema import EventKind, ResultFile
from cellauto.sim import SimHandle, start_simulator

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sim() -> AsyncIterator[SimHandle]:
    handle = await start_simulator("cellqualia", seed=3)
    yield handle
    await handle.stop()


def downloaded(file: ResultFile) -> bytes:
    """The content of a result file the adapter downloaded (a ``file://`` URL)."""
    return Path(url2pathname(urlparse(file.path).path)).read_bytes()


async def test_parameters_reach_the_simulator_and_the_result_files_come_back(
    sim: SimHandle,
) -> None:
    async with await cellauto.connect(sim.url, device_id="cq", time=sim.time) as device:
        feed = device.events()
        parameters = {"seeding_density": Q(45, "{cells}/mm2"), "cell_type": "MSC"}
        run = await device.start_program("MSC expansion", parameters)
        served = sim.device.current_run  # type: ignore[attr-defined]
        assert served is not None
        density = served.parameters["seeding_density"]
        assert density.unit == "{cells}/cm2"
        assert density.value == pytest.approx(4500.0)
        assert served.parameters["cell_type"] == "MSC"
        assert served.parameters["feed_interval"] == Q(72.0, "h")  # the template's default

        async for event in feed:  # answer the prompts; abort once the culture is seeded
            if event.kind is EventKind.PROMPT:
                await device.answer_prompt(str(event.data["prompt_id"]), "done", "olga")
            elif event.kind is EventKind.STEP_STARTED and event.message.startswith("Expand"):
                break
        feed.close()
        await device.abort()
        with pytest.raises(RunAborted) as aborted:
            await run
    result = aborted.value.result  # an aborted run fails with what it produced
    assert result is not None
    assert result.outcome == "aborted"
    files = {f.name: f for f in result.files}
    assert set(files) == {"phase-contrast-final.png", "cell-bank-summary.json"}
    for file in files.values():
        assert hashlib.sha256(downloaded(file)).hexdigest() == file.sha256
    assert files["phase-contrast-final.png"].mime_type == "image/png"
    assert downloaded(files["phase-contrast-final.png"]).startswith(b"\x89PNG")
    summary = json.loads(downloaded(files["cell-bank-summary.json"]))
    assert summary["outcome"] == "aborted"
    assert summary["images"] == ["phase-contrast-final.png"]


async def test_a_parameter_outside_the_template_is_refused_by_the_simulator(
    sim: SimHandle,
) -> None:
    url = sim.url.replace("cellqualia+opcua://", "opc.tcp://")
    before = sim.device.current_run  # type: ignore[attr-defined]
    async with Client(url, timeout=30) as client:
        lads = await client.get_namespace_index("http://opcfoundation.org/UA/LADS/")
        ns = await client.get_namespace_index("urn:cellauto:gateway")
        machine = client.get_node(f"ns={ns};s=cellqualia-sim.isolator.FunctionalUnitState")
        start = await machine.get_child(f"{lads}:StartProgram")
        too_dense = ua.KeyValuePair(
            Key=ua.QualifiedName("seeding_density"), Value=ua.Variant(20000.0)
        )
        with pytest.raises(UaStatusCodeError) as refused:
            await machine.call_method(
                start.nodeid,
                ua.Variant("MSC expansion", ua.VariantType.String),
                ua.Variant([too_dense], ua.VariantType.ExtensionObject, is_array=True),
                ua.Variant("", ua.VariantType.String),
                ua.Variant("", ua.VariantType.String),
                ua.Variant([], ua.VariantType.ExtensionObject, is_array=True),
            )
        assert refused.value.code == StatusCodes.BadInvalidArgument
    assert sim.device.current_run is before  # type: ignore[attr-defined]  # nothing started
