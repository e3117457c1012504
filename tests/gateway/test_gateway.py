"""`cellauto gateway --lads`: Cocoon and Prodigy simulators served as LADS devices, checked by
asyncua clients and by an independent client (node-opcua). One gateway for the module."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.status_codes import StatusCodes
from asyncua.ua.uaerrors import BadNotConnected, BadUserAccessDenied, UaStatusCodeError
from cryptography.hazmat.primitives import serialization

import cellauto
from cellauto.gateway import AuditCall, BatchAudit, Gateway, Role, serve_lads
from cellauto.gateway.security import make_certificate
from cellauto.lads.units import unece_unit_id
from cellauto.mock import MockDevice
from cellauto.profiles import load_profile
from cellauto.records import open_batch
from cellauto.state import StateCommand
from node_opcua import NODE_DIR, lads_browser

pytestmark = pytest.mark.asyncio(loop_scope="module")

LADS = "http://opcfoundation.org/UA/LADS/"
DI = "http://opcfoundation.org/UA/DI/"


class Served:
    """The module's gateway, its devices and what it audited."""

    def __init__(self, gateway: Gateway, devices: dict[str, cellauto.Device]) -> None:
        self.gateway = gateway
        self.devices = devices
        self.audited: list[AuditCall] = []
        self.changed = asyncio.Event()

    @property
    def url(self) -> str:
        return self.gateway.url


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    devices = {
        "prodigy": await cellauto.connect("prodigy+sim://?speed=max", device_id="prodigy-1"),
        "cocoon": await cellauto.connect("cocoon+sim://?speed=max", device_id="cocoon-1"),
    }
    audited: list[AuditCall] = []
    batches = BatchAudit()
    result: Served | None = None

    def audit(call: AuditCall) -> None:
        audited.append(call)
        batches(call)
        if result is not None:
            result.changed.set()

    gateway = serve_lads(
        list(devices.values()),
        state=tmp_path_factory.mktemp("gateway"),
        port=0,
        allow_unsecured_read=True,
        audit=audit,
    )
    gateway.users.add("olga", Role.OPERATOR, "operator-pw")
    gateway.users.add("sam", Role.SUPERVISOR, "supervisor-pw")
    async with gateway:
        result = Served(gateway, devices)
        result.audited = audited
        yield result
    batches.close()
    for device in devices.values():
        await device.close()


def client(served: Served, user: str | None = None, password: str | None = None) -> Client:
    c = Client(served.url, timeout=10)
    if user is not None:
        c.set_user(user)
        c.set_password(password or "")
    return c


async def node(c: Client, ident: str) -> Any:
    ns = await c.get_namespace_index("urn:cellauto:gateway")
    return c.get_node(ua.NodeId(ident, ns))


async def wait_for_value(c: Client, var: Any, accept: Callable[[Any], bool]) -> Any:
    """The variable's first value `accept` takes, seen through an OPC UA subscription."""
    seen: asyncio.Queue[Any] = asyncio.Queue()

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            seen.put_nowait(val)

    subscription = await c.create_subscription(20, Handler())
    await subscription.subscribe_data_change(var)
    try:
        while True:
            value = await seen.get()
            if accept(value):
                return value
    finally:
        await subscription.delete()


async def wait_for_status(c: Client, var: Any, accept: Callable[[ua.StatusCode], bool]) -> None:
    """Wait, through an OPC UA subscription, until the variable's status is one `accept` takes."""
    seen: asyncio.Queue[ua.StatusCode] = asyncio.Queue()

    class Handler:
        def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
            seen.put_nowait(data.monitored_item.Value.StatusCode)

    subscription = await c.create_subscription(20, Handler())
    await subscription.subscribe_data_change(var)
    try:
        while not accept(await seen.get()):
            pass
    finally:
        await subscription.delete()


async def test_device_set_holds_one_lads_device_per_device_with_its_units(served: Served) -> None:
    async with client(served) as c:
        lads = await c.get_namespace_index(LADS)
        di = await c.get_namespace_index(DI)
        device_set = await c.nodes.objects.get_child(f"{di}:DeviceSet")
        names = {(await n.read_browse_name()).Name for n in await device_set.get_children()}
        assert {"prodigy-1", "cocoon-1"} <= names
        for key, device in served.devices.items():
            lads_device = await node(c, device.device_id)
            assert (await lads_device.read_type_definition()) == ua.NodeId(1002, lads)
            units = await lads_device.get_child(f"{lads}:FunctionalUnitSet")
            unit_names = {(await u.read_browse_name()).Name for u in await units.get_children()}
            assert {u.name for u in device.profile.functional_units} <= unit_names, key
            serial = await (await lads_device.get_child(f"{di}:SerialNumber")).read_value()
            assert serial == device.info.serial_number


async def test_values_carry_engineering_units_and_ranges(served: Served) -> None:
    async with client(served) as c:
        value = await node(c, "prodigy-1.chamber.temperature.SensorValue")
        eu = await (await value.get_child("0:EngineeringUnits")).read_value()
        assert eu.UnitId == unece_unit_id("CEL")
        rng = await (await value.get_child("0:EURange")).read_value()
        channel = served.devices["prodigy"].profile.channel("chamber.temperature")
        assert channel.eu_range is not None
        assert (rng.Low, rng.High) == (channel.eu_range.low, channel.eu_range.high)
        first = await wait_for_value(c, value, lambda v: v != 0.0)  # the first sample
        assert 20.0 < first < 45.0
        assert (await value.read_data_value()).StatusCode.is_good()


async def test_state_machine_shows_the_device_state(served: Served) -> None:
    async with client(served) as c:
        current = await node(c, "cocoon-1.chamber.FunctionalUnitState.CurrentState")
        state = served.devices["cocoon"].state
        assert (await current.read_value()).Text == str(state.functional)


async def test_anonymous_write_and_call_are_refused(served: Served) -> None:
    async with client(served) as c:
        value = await node(c, "prodigy-1.chamber.temperature.SensorValue")
        with pytest.raises(BadUserAccessDenied):
            await value.write_value(ua.Variant(99.0, ua.VariantType.Double))
        machine = await node(c, "prodigy-1.chamber.FunctionalUnitState")
        with pytest.raises(BadUserAccessDenied):
            await machine.call_method(await node(c, "prodigy-1.chamber.FunctionalUnitState.Abort"))


async def test_wrong_password_is_refused(served: Served) -> None:
    with pytest.raises(UaStatusCodeError):
        async with client(served, "olga", "not-her-password"):
            pass
    with pytest.raises(UaStatusCodeError):
        async with client(served, "nobody", "x"):
            pass


async def test_operator_cannot_abort_and_the_refusal_is_audited(served: Served) -> None:
    async with client(served, "olga", "operator-pw") as c:
        machine = await node(c, "cocoon-1.chamber.FunctionalUnitState")
        abort = await node(c, "cocoon-1.chamber.FunctionalUnitState.Abort")
        with pytest.raises(BadUserAccessDenied):
            await machine.call_method(abort)
    refused = [a for a in served.audited if a.action == "gateway.Abort"]
    assert refused[-1].user == "olga"
    assert refused[-1].outcome.startswith("refused")
    assert served.devices["cocoon"].state != cellauto.State.parse("Aborted")


async def test_operator_runs_a_program_and_answers_its_prompt(served: Served) -> None:
    prodigy = served.devices["prodigy"]
    async with client(served, "olga", "operator-pw") as c:
        machine = await node(c, "prodigy-1.chamber.FunctionalUnitState")
        start = await node(c, "prodigy-1.chamber.FunctionalUnitState.StartProgram")
        empty = ua.Variant([], ua.VariantType.ExtensionObject, is_array=True)
        run_id = await machine.call_method(
            start, ua.Variant("TCT", ua.VariantType.String), empty, "job-1", "task-1", empty
        )
        run = prodigy.current_run
        assert run is not None
        assert run_id == run.device_program_run_id
        assert run.user == "opcua:olga"
        active = await node(c, "prodigy-1.chamber.ProgramManager.ActiveProgram.DeviceProgramRunId")
        await wait_for_value(c, active, lambda v: v == run_id)
        prompts = await node(c, "prodigy-1.Prompts.OpenPrompts")
        await wait_for_value(c, prompts, bool)
        open_prompt = prodigy.prompts[0]
        answer = await node(c, "prodigy-1.Prompts.AnswerPrompt")
        folder = await node(c, "prodigy-1.Prompts")
        await folder.call_method(answer, open_prompt.prompt_id, "done")
        assert open_prompt.prompt_id not in {p.prompt_id for p in prodigy.prompts}
    started = [a for a in served.audited if a.action == "gateway.StartProgram"]
    assert (started[-1].user, started[-1].outcome) == ("olga", "ok")
    async with client(served, "sam", "supervisor-pw") as c:
        machine = await node(c, "prodigy-1.chamber.FunctionalUnitState")
        await machine.call_method(await node(c, "prodigy-1.chamber.FunctionalUnitState.Abort"))
        current = await node(c, "prodigy-1.chamber.FunctionalUnitState.CurrentState")
        await wait_for_value(c, current, lambda v: v.Text == "Aborted")


async def test_untrusted_certificate_is_refused_and_kept_for_review(
    served: Served, tmp_path: Path
) -> None:
    cert, key = make_certificate("urn:test:client", common_name="test client", client=True)
    cert_path, key_path = tmp_path / "client.der", tmp_path / "client.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_cert = served.gateway.config.state / "pki" / "own" / "cert.der"

    async def connect() -> None:
        c = client(served, "olga", "operator-pw")
        c.application_uri = "urn:test:client"
        await c.set_security(
            SecurityPolicyBasic256Sha256,
            str(cert_path),
            str(key_path),
            server_certificate=str(server_cert),
            mode=ua.MessageSecurityMode.SignAndEncrypt,
        )
        async with c:
            value = await node(c, "cocoon-1.chamber.temperature.SensorValue")
            await value.read_data_value()

    with pytest.raises(UaStatusCodeError):
        await connect()
    rejected = {p.name: p for p in served.gateway.trust.rejected()}
    name = f"{_thumb(cert_path)}.der"
    assert name in rejected
    shutil.move(rejected[name], served.gateway.trust.trusted_dir / name)
    await connect()  # once an administrator trusts it, it connects


def _thumb(path: Path) -> str:
    from cellauto.gateway.security import thumbprint

    return thumbprint(path.read_bytes())


async def test_many_clients_at_once(served: Served) -> None:
    async def one() -> float:
        async with client(served) as c:
            value = await node(c, "cocoon-1.chamber.temperature.SensorValue")
            result: float = (await value.read_data_value()).Value.Value
            return result

    values = await asyncio.gather(*(one() for _ in range(8)))
    assert len(values) == 8


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def node_client() -> Path:
    return await lads_browser()


async def test_an_independent_client_finds_units_and_values(
    served: Served, node_client: Path, tmp_path: Path
) -> None:
    node = shutil.which("node")
    assert node is not None
    # the plant system's application certificate, trusted by an administrator beforehand
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
    served.gateway.trust.trust(cert)
    process = await asyncio.create_subprocess_exec(
        node,
        str(node_client),
        served.url,
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
    for device in served.devices.values():
        units = found["devices"][device.device_id]["units"]
        assert set(units) >= {u.name for u in device.profile.functional_units}
        temperature = units["chamber"]["functions"]["temperature"]
        assert temperature["unitId"] == unece_unit_id("CEL")
        assert isinstance(temperature["value"], float)


class NeverAnswer:
    """A prompt policy that leaves prompts to the plant system."""

    async def answer(self, request: Any) -> Any:
        await asyncio.Event().wait()


async def test_calls_are_audited_in_the_batch_record_and_a_dropped_device_is_not_available(
    served: Served, tmp_path: Path
) -> None:
    async with cellauto.Batch(
        "GW-1",
        product="test",
        operator="alice",
        records=tmp_path,
        alarm_policy=None,
        prompts=NeverAnswer(),
        signatures_for=(),
    ) as batch:
        device = await batch.connect("prodigy+sim://?speed=max", device_id="prodigy-9")
        await served.gateway.add_device(device)
        async with client(served, "sam", "supervisor-pw") as c:
            running = await node(c, "prodigy-9.chamber.FunctionalUnitState.RunningStateMachine")
            await running.call_method(
                await node(c, "prodigy-9.chamber.FunctionalUnitState.RunningStateMachine.Reset")
            )
    # leaving the batch closes the device: the gateway shows it as not available
    async with client(served) as c:
        value = await node(c, "prodigy-9.chamber.temperature.SensorValue")
        await wait_for_status(c, value, lambda code: code.value == StatusCodes.BadNotConnected)
        current = await node(c, "prodigy-9.chamber.FunctionalUnitState.CurrentState")
        with pytest.raises(BadNotConnected):
            await current.read_data_value()
    audit = open_batch(tmp_path / "GW-1").audit_entries()
    # one entry per gateway call: the batch does not also write it as the script's
    assert [e.action for e in audit if e.reason == "by the script"] == []
    entries = [e for e in audit if e.action.startswith("gateway.")]
    assert [(e.actor, e.action, e.object) for e in entries] == [
        ("opcua:sam", "gateway.Reset", "prodigy-9")
    ]


async def test_endpoints_offer_both_policies_signed_and_encrypted(served: Served) -> None:
    async with client(served) as c:
        endpoints = await c.get_endpoints()
    offered = {(e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode) for e in endpoints}
    for policy in ("Basic256Sha256", "Aes256_Sha256_RsaPss"):
        for mode in (ua.MessageSecurityMode.Sign, ua.MessageSecurityMode.SignAndEncrypt):
            assert (policy, mode) in offered
    cert = served.gateway.config.state / "pki" / "own" / "cert.der"
    assert all(e.ServerCertificate == cert.read_bytes() for e in endpoints)


def _write_pair(cert: Any, key: Any, folder: Path, name: str) -> tuple[Path, Path]:
    cert_path, key_path = folder / f"{name}.der", folder / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_x509_user_token_maps_to_its_role(served: Served, tmp_path: Path) -> None:
    app_cert, app_key = make_certificate("urn:test:mes", common_name="mes", client=True)
    user_cert, user_key = make_certificate(
        "urn:test:lab", common_name="lab supervisor", client=True
    )
    app = _write_pair(app_cert, app_key, tmp_path, "app")
    user = _write_pair(user_cert, user_key, tmp_path, "user")
    served.gateway.trust.trust(app_cert)
    served.gateway.users.add_certificate("lab-supervisor", Role.SUPERVISOR, user_cert)
    c = Client(served.url, timeout=10)
    c.application_uri = "urn:test:mes"
    await c.set_security(
        SecurityPolicyBasic256Sha256,
        str(app[0]),
        str(app[1]),
        server_certificate=str(served.gateway.config.state / "pki" / "own" / "cert.der"),
        mode=ua.MessageSecurityMode.SignAndEncrypt,
    )
    await c.load_client_certificate(str(user[0]))
    await c.load_private_key(user[1])
    running = "cocoon-1.chamber.FunctionalUnitState.RunningStateMachine"
    async with c:
        # Reset (a supervisor's method) from Stopped or Idle is legal on the Cocoon
        await (await node(c, running)).call_method(await node(c, f"{running}.Reset"))
    reset = [a for a in served.audited if a.action == "gateway.Reset"]
    assert (reset[-1].user, reset[-1].outcome) == ("lab-supervisor", "ok")


class GatedMock(MockDevice):
    """A mock whose state commands wait until the test lets them through."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrived = asyncio.Event()
        self.gate = asyncio.Event()

    async def _send_state_command(self, command: StateCommand) -> None:
        self.arrived.set()
        await self.gate.wait()
        await super()._send_state_command(command)


async def test_a_client_leaving_mid_call_changes_nothing_unexpected(served: Served) -> None:
    device = GatedMock("gated-1", load_profile("prodigy"))
    await device.connect()
    await served.gateway.add_device(device)
    running = "gated-1.chamber.FunctionalUnitState.RunningStateMachine"
    c = client(served, "sam", "supervisor-pw")
    await c.connect()
    call = asyncio.create_task(
        (await node(c, running)).call_method(await node(c, f"{running}.Reset"))
    )
    await device.arrived.wait()
    transport = c.uaclient.protocol.transport  # the plant system vanishes mid-call
    assert transport is not None
    transport.abort()
    with pytest.raises((ConnectionError, asyncio.CancelledError, UaStatusCodeError, TimeoutError)):
        await call
    device.gate.set()
    while True:  # the call finishes on the device and is audited once
        reset = [a for a in served.audited if a.action == "gateway.Reset" and a.device is device]
        if reset:
            break
        served.changed.clear()
        await served.changed.wait()
    assert [(a.user, a.outcome) for a in reset] == [("sam", "ok")]
    assert [name for name, _ in device.calls if name == "reset"] == ["reset"]
    with contextlib.suppress(Exception):
        await c.disconnect()
    async with client(served) as other:  # the gateway still serves everyone else
        di = await other.get_namespace_index(DI)
        serial = await (await node(other, "gated-1")).get_child(f"{di}:SerialNumber")
        assert await serial.read_value() == device.info.serial_number
