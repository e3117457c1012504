"""A secure LADS connection verifies the server (ADR 0029): its certificate is pinned at the
first secure connection and must match afterwards; ``server_cert=<file>`` names the trusted one
instead. Another certificate is refused with `ServerCertificateRefused`, naming the device, both
fingerprints and the file. The servers are CellQualia simulators (each one the LADS gateway with
its own certificate)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

import cellauto
from cellauto.errors import ConnectionLost, DeviceOptionError, ServerCertificateRefused
from cellauto.sim import SimHandle, start_simulator
from cellauto.sim.families import lads as lads_family
from cellauto.transport.opcua_security import ClientSecurity, fingerprint

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sim() -> AsyncIterator[SimHandle]:
    handle = await start_simulator("cellqualia", seed=6)
    yield handle
    await handle.stop()


async def start_with_own_certificate(folder: Path, **options: Any) -> SimHandle:
    """A simulator whose gateway makes a certificate of its own in `folder` (the simulators of
    one process otherwise share one)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lads_family, "_state_dir", lambda: folder)
        return await start_simulator("cellqualia", **options)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def other(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SimHandle]:
    handle = await start_with_own_certificate(tmp_path_factory.mktemp("other"), seed=7)
    yield handle
    await handle.stop()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CELLAUTO_STATE_DIR", str(tmp_path / "state"))
    return tmp_path / "state"


def server_certificate(sim: SimHandle) -> bytes:
    """The certificate the simulator's gateway presents (DER)."""
    return (sim.gateway.config.state / "pki" / "own" / "cert.der").read_bytes()


async def trust_client(sim: SimHandle, url: str) -> None:
    """Connect once so cellauto makes its client certificate (the server refuses it), then have
    the server trust it."""
    with pytest.raises(ConnectionLost, match="does not trust cellauto's client certificate"):
        await cellauto.connect(url, device_id="cq", time=sim.time)
    sim.gateway.trust.trust(ClientSecurity.named("sign").certificate.read_bytes())


async def read_pressure(sim: SimHandle, url: str) -> None:
    async with await cellauto.connect(url, device_id="cq", time=sim.time) as device:
        sample = await device.read("isolator.differential_pressure")
        assert sample.unit == "Pa"


async def test_the_first_connection_pins_the_server_certificate_and_later_ones_match(
    sim: SimHandle, state: Path
) -> None:
    url = f"{sim.url}?security=sign_encrypt&timeout=10"
    pin = ClientSecurity.named("sign_encrypt").pinned(sim.url)
    assert pin.is_relative_to(state)
    assert not pin.exists()
    await trust_client(sim, url)
    assert pin.read_bytes() == server_certificate(sim)  # pinned before the server answered
    await read_pressure(sim, url)
    await read_pressure(sim, url)
    assert pin.read_bytes() == server_certificate(sim)


async def test_a_server_with_another_certificate_at_a_pinned_address_is_refused(
    state: Path, tmp_path: Path
) -> None:
    first = await start_simulator("cellqualia", seed=8)
    try:
        url = f"{first.url}?security=sign&timeout=10"
        await trust_client(first, url)
        await read_pressure(first, url)
        pinned = server_certificate(first)
    finally:
        await first.stop()
    port = int(first.url.rsplit(":", 1)[1])
    second = await start_with_own_certificate(tmp_path / "second", seed=9, port=port)
    try:
        second.gateway.trust.trust(ClientSecurity.named("sign").certificate.read_bytes())
        presented = server_certificate(second)
        assert presented != pinned
        pin = ClientSecurity.named("sign").pinned(second.url)
        with pytest.raises(ServerCertificateRefused) as refused:
            await cellauto.connect(url, device_id="cq", time=second.time)
        assert refused.value.device == "cq"
        assert refused.value.presented == fingerprint(presented)
        assert refused.value.trusted == fingerprint(pinned)
        assert refused.value.file == str(pin)
        assert f"remove {pin}" in str(refused.value)
        assert pin.read_bytes() == pinned  # never replaced silently

        pin.unlink()  # the operator confirmed the change: the next connection pins anew
        await read_pressure(second, url)
        assert pin.read_bytes() == presented
    finally:
        await second.stop()


async def test_server_cert_names_the_trusted_certificate(
    sim: SimHandle, other: SimHandle, state: Path, tmp_path: Path
) -> None:
    url = f"{sim.url}?security=sign&timeout=10"
    await trust_client(sim, url)
    pin = ClientSecurity.named("sign").pinned(sim.url)
    pin.unlink()  # trust on first use is not what is tested here

    wrong = tmp_path / "other.der"
    wrong.write_bytes(server_certificate(other))
    with pytest.raises(ServerCertificateRefused, match="server_cert=") as refused:
        await cellauto.connect(f"{url}&server_cert={wrong}", device_id="cq", time=sim.time)
    assert refused.value.presented == fingerprint(server_certificate(sim))
    assert refused.value.trusted == fingerprint(server_certificate(other))
    assert refused.value.file == str(wrong)

    right = tmp_path / "server.pem"  # PEM as well as DER
    loaded = x509.load_der_x509_certificate(server_certificate(sim))
    right.write_bytes(loaded.public_bytes(Encoding.PEM))
    await read_pressure(sim, f"{url}&server_cert={right}")
    assert not pin.exists()  # a named certificate is not pinned


async def test_server_cert_without_security_or_a_certificate_is_refused(
    sim: SimHandle, state: Path, tmp_path: Path
) -> None:
    with pytest.raises(DeviceOptionError, match="needs security=sign"):
        await cellauto.connect(f"{sim.url}?server_cert={tmp_path}/x.der", device_id="cq")
    junk = tmp_path / "junk.der"
    junk.write_bytes(b"not a certificate")
    with pytest.raises(DeviceOptionError, match="cannot read a certificate"):
        await cellauto.connect(
            f"{sim.url}?security=sign&timeout=10&server_cert={junk}", device_id="cq", time=sim.time
        )
