"""The LiCellGrow simulator on a real loopback SiLA 2 server (TLS), through the generic SiLA 2
adapter without LiCellGrow's profile, and through the library's own dynamic client."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from sila2.client import SilaClient
from sila2.framework.errors.defined_execution_error import DefinedExecutionError

from cellauto.profiles import load_profile
from cellauto.registry import connect
from cellauto_simulators.licellgrow import LiCellGrowSimulator


async def test_generic_adapter_and_an_independent_client_see_the_simulator() -> None:
    sim = await LiCellGrowSimulator.launch(load_profile("licellgrow"), {}, default_speed="max")
    try:
        url = urlparse(sim.url)
        ca = parse_qs(url.query)["ca"][0]
        device = await connect(f"sila+grpc://{url.netloc}?ca={ca}", time=sim.time)
        try:
            assert device.profile.device == "licellgrow"  # published by the server
            assert device.info.serial_number == "LCG-SIM-1"
            glucose = await device.read("metabolite_sensor.glucose")
            assert glucose.unit == "mmol/L"
            assert isinstance(glucose.value, float)
            assert str(device.state) == "Stopped"
        finally:
            await device.close()

        def independent() -> tuple[str, list[str], float, bool, str]:
            client = SilaClient(url.hostname or "", url.port or 0, root_certs=Path(ca).read_bytes())
            try:
                try:
                    client.SimulationController.StartRealMode()
                    refused = ""
                except DefinedExecutionError as exc:
                    refused = exc.message
                return (
                    client.SiLAService.ServerName.get(),
                    client.SiLAService.ImplementedFeatures.get(),
                    client.LicellgrowChannels.CultureTemperature.get(),
                    client.SimulationController.SimulationMode.get(),
                    refused,
                )
            finally:
                client.close()

        name, features, temperature, simulated, refused = await asyncio.to_thread(independent)
        assert simulated is True
        assert "no real mode" in refused
        assert name == "LiCellGrow simulator"
        assert "org.cellauto/devices/ProgramController/v1" in features
        assert 30 < temperature < 45
    finally:
        await sim.stop()
