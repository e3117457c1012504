"""`serve_sila`: a simulated Prodigy behind the SiLA gateway, seen by the library's own client
and by cellauto's generic SiLA adapter."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sila2.client import SilaClient

from cellauto.gateway.sila import serve_sila
from cellauto.registry import connect


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
