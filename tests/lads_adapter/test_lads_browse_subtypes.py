"""A vendor's subtype of a LADS function type is browsed as the LADS function it derives from
(before, such a function was skipped)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.instantiate_util import instantiate

from cellauto.lads import FunctionKind
from cellauto.lads._ua import nid
from cellauto.sim import SimHandle, start_simulator
from cellauto.transport.lads import browse_devices

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sim() -> AsyncIterator[SimHandle]:
    handle = await start_simulator("cellqualia", seed=2)
    yield handle
    await handle.stop()


async def test_a_function_of_a_vendor_subtype_is_browsed_as_its_lads_kind(sim: SimHandle) -> None:
    server = sim.gateway.server  # type: ignore[attr-defined]
    vendor = await server.register_namespace("urn:test:vendor")
    lads = await server.get_namespace_index("http://opcfoundation.org/UA/LADS/")
    sensor = server.get_node(nid(1016, lads))  # AnalogScalarSensorFunctionType
    level_1 = await sensor.add_object_type(vendor, "VendorSensorFunctionType")
    level_2 = await level_1.add_object_type(vendor, "VendorTurbiditySensorFunctionType")
    ns = await server.get_namespace_index("urn:cellauto:gateway")
    function_set = server.get_node(nid("cellqualia-sim.imaging.FunctionSet", ns))
    await instantiate(
        function_set,
        level_2,
        nodeid=nid("cellqualia-sim.imaging.turbidity", ns),
        bname=ua.QualifiedName("turbidity", ns),
    )

    url = sim.url.replace("cellqualia+opcua://", "opc.tcp://")
    async with Client(url, timeout=30) as client:
        (device,) = await browse_devices(client)
    imaging = device.unit("imaging")
    assert imaging is not None
    functions = {f.name: f for f in imaging.functions}
    assert functions["turbidity"].kind is FunctionKind.ANALOG_SENSOR
    assert functions["turbidity"].value.endswith("turbidity.SensorValue")
    assert functions["confluency"].kind is FunctionKind.ANALOG_SENSOR  # LADS's own type still
