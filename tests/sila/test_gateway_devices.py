"""Every device cellauto has a simulator for, served through one SiLA gateway (one server per
device) and read by the `sila2` library's own client: identity and a channel per device."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from sila2.client import SilaClient

import cellauto
from cellauto.gateway.sila import SilaGateway, serve_sila
from cellauto.sila.fdl import channels_identifier, identifier

pytestmark = pytest.mark.asyncio(loop_scope="module")

DEVICES = ("cocoon", "prodigy", "acc200", "maholo", "cellqualia", "licellgrow")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SilaGateway]:
    devices = [
        await cellauto.connect(f"{kind}+sim://?speed=max&seed=1", device_id=f"{kind}-1")
        for kind in DEVICES
    ]
    try:
        served = serve_sila(devices, state=tmp_path_factory.mktemp("gw"), port=0, insecure=True)
        async with served:
            yield served
    finally:
        for device in devices:
            await device.close()


@pytest.mark.parametrize("kind", DEVICES)
async def test_the_device_is_read_through_its_own_sila_server(
    gateway: SilaGateway, kind: str
) -> None:
    server = next(s for s in gateway.servers if s.device.profile.device == kind)
    device = server.device
    channel = next(n for n, c in device.profile.channels().items() if c.dtype in ("float", "int"))

    def independent() -> tuple[str, str, object]:
        client = SilaClient("127.0.0.1", server.port, insecure=True)
        try:
            channels = getattr(client, channels_identifier(kind))
            return (
                client.SiLAService.ServerName.get(),
                client.DeviceIdentity.Identity.get(),
                getattr(channels, identifier(channel)).get(),
            )
        finally:
            client.close()

    name, identity, value = await asyncio.to_thread(independent)
    assert name == f"cellauto {kind}-1"
    assert json.loads(identity) == device.info.model_dump(mode="json")
    assert isinstance(value, float | int)
    assert not isinstance(value, bool)
