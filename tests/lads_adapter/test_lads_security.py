"""Secure endpoints from the LADS adapter: ``?security=sign`` or ``?security=sign_encrypt``
connects with Basic256Sha256 and cellauto's client certificate, made on first use in the state
folder and kept; a server that does not trust it yet refuses it, and the error names the file to
trust. The server is the CellQualia simulator, which is the LADS gateway (it offers the secure
endpoints beside its unsecured one)."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from asyncua import ua

import cellauto
from cellauto.errors import ConnectionLost, DeviceOptionError
from cellauto.sim import SimHandle, start_simulator
from cellauto.transport.opcua_security import ClientSecurity

pytestmark = pytest.mark.asyncio(loop_scope="module")

BASIC256SHA256 = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sim() -> AsyncIterator[SimHandle]:
    handle = await start_simulator("cellqualia", seed=4)
    yield handle
    await handle.stop()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CELLAUTO_STATE_DIR", str(tmp_path))
    return tmp_path


def secured_channels(sim: SimHandle) -> list[tuple[str, ua.MessageSecurityMode]]:
    """(policy URI, mode) of each client channel the server holds open."""
    channels = []
    for protocol in sim.gateway.server.bserver.clients:
        policy = protocol.processor._connection.security_policy
        channels.append((policy.URI, policy.Mode))
    return channels


@pytest.mark.parametrize(
    ("option", "mode"),
    [
        ("sign_encrypt", ua.MessageSecurityMode.SignAndEncrypt),
        ("sign", ua.MessageSecurityMode.Sign),
    ],
)
async def test_a_trusted_client_certificate_connects_signed_or_encrypted(
    sim: SimHandle, state: Path, option: str, mode: ua.MessageSecurityMode
) -> None:
    url = f"{sim.url}?security={option}&timeout=10"
    with pytest.raises(ConnectionLost, match="does not trust cellauto's client certificate"):
        await cellauto.connect(url, device_id="cq", time=sim.time)
    security = ClientSecurity.named(option)
    made = security.certificate.read_bytes()  # made on first use, before the server refused it
    assert security.certificate.is_relative_to(state)
    assert stat.S_IMODE(security.private_key.parent.stat().st_mode) == 0o700
    sim.gateway.trust.trust(made)

    async with await cellauto.connect(url, device_id="cq", time=sim.time) as device:
        sample = await device.read("isolator.differential_pressure")
        assert sample.unit == "Pa"
        assert (BASIC256SHA256, mode) in secured_channels(sim)
    assert security.certificate.read_bytes() == made  # kept, not made again


async def test_an_unknown_security_mode_is_refused_naming_the_option(sim: SimHandle) -> None:
    with pytest.raises(DeviceOptionError, match="must be none, sign or sign_encrypt"):
        await cellauto.connect(f"{sim.url}?security=Basic128Rsa15", device_id="cq")
