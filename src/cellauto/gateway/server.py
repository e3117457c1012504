"""The LADS gateway: one OPC UA server whose DI DeviceSet holds one LADS device per connected
cellauto device."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast

from asyncua import ua

from cellauto.driver import Device
from cellauto.errors import GatewayError
from cellauto.gateway.alarms import AlarmConditions
from cellauto.gateway.audit import AuditSink, BatchAudit
from cellauto.gateway.binding import DeviceBinding
from cellauto.gateway.security import (
    GatewayRuleset,
    GatewayUserManager,
    Role,
    TrustList,
    UserStore,
    application_uri,
    ensure_certificate,
)
from cellauto.lads._ua import Server
from cellauto.lads.builder import LadsBuilder
from cellauto.lads.cache import init_with_lads

GATEWAY_NAMESPACE = "urn:cellauto:gateway"
"""Namespace of the gateway's instance nodes (device, unit and function NodeIds)."""

SECURE_POLICIES: tuple[ua.SecurityPolicyType, ...] = (
    ua.SecurityPolicyType.Basic256Sha256_Sign,
    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_Sign,
    ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
)


@dataclass
class GatewayConfig:
    """Where and how the gateway serves.

    `state` holds the certificate, trust list and users (created on first start). With
    `allow_unsecured_read`, a None-security endpoint is offered too, on which anonymous users
    may browse and read only (writes and calls need a user with a role, whatever the
    endpoint). `anonymous=False` turns anonymous sessions off altogether.
    """

    state: Path
    host: str = "127.0.0.1"
    port: int = 4840
    allow_unsecured_read: bool = False
    anonymous: bool = True
    audit: AuditSink | None = None
    name: str = "cellauto LADS gateway"
    users: UserStore | None = field(default=None, repr=False)
    startup_cache: Path | None = None
    """Folder of the LADS start-up cache (`cellauto.lads.cache`), or None to build."""


class Gateway:
    """Serves devices as LADS devices; ``async with Gateway(devices, config) as gw:``."""

    def __init__(self, devices: Iterable[Device], config: GatewayConfig) -> None:
        self.devices = list(devices)
        self.config = config
        self.users = config.users or UserStore(config.state / "users.json")
        self.users.anonymous = Role.OBSERVER if config.anonymous else None
        self.trust = TrustList(config.state / "pki")
        self._batch_audit = BatchAudit() if config.audit is None else None
        self.audit: AuditSink = config.audit or self._batch_audit  # type: ignore[assignment]
        self.server = Server(user_manager=cast(Any, GatewayUserManager(self.users, self.trust)))
        self.bindings: list[DeviceBinding] = []
        self.url = f"opc.tcp://{config.host}:{config.port}"
        self._started = False
        self._builder: LadsBuilder | None = None
        self._alarms: AlarmConditions | None = None

    async def start(self) -> None:
        """Build the address space, start serving, and follow every device."""
        config, server = self.config, self.server
        uri = application_uri()
        cert, key = ensure_certificate(config.state / "pki", uri)
        namespaces = await init_with_lads(server, config.startup_cache)
        await server.set_application_uri(uri)
        server.set_server_name(config.name)
        server.set_endpoint(self.url)
        await server.load_certificate(str(cert))
        await server.load_private_key(str(key))
        policies: list[ua.SecurityPolicyType] = list(SECURE_POLICIES)
        if config.allow_unsecured_read:
            policies.insert(0, ua.SecurityPolicyType.NoSecurity)
        server.set_security_policy(
            policies, permission_ruleset=cast(Any, GatewayRuleset(self.users))
        )
        tokens: list[type] = [ua.UserNameIdentityToken, ua.X509IdentityToken]
        if self.users.anonymous is not None:
            tokens.insert(0, ua.AnonymousIdentityToken)
        server.set_identity_tokens(tokens)
        server.set_certificate_validator(self.trust)
        idx = await server.register_namespace(GATEWAY_NAMESPACE)
        self._builder = LadsBuilder(server, namespaces, idx)
        self._alarms = AlarmConditions(server, self.users)
        await self._alarms.setup()
        for device in self.devices:
            await self._bind(device)
        await server.start()
        self._started = True
        if server.bserver is not None:  # the real port when port 0 asked for a free one
            self.url = f"opc.tcp://{config.host}:{server.bserver.port}"
        for binding in self.bindings:
            await self._follow(binding)

    async def add_device(self, device: Device) -> None:
        """Serve one more connected device (the gateway may be running)."""
        binding = await self._bind(device)
        self.devices.append(device)
        if self._started:
            await self._follow(binding)

    async def _bind(self, device: Device) -> DeviceBinding:
        if self._builder is None or self._alarms is None:
            raise GatewayError("the gateway is not started; use `async with` first")
        if any(b.device.device_id == device.device_id for b in self.bindings):
            raise GatewayError(f"device {device.device_id} is already served")
        binding = DeviceBinding(device, self._builder, self.users, self.audit, self._alarms)
        await binding.build()
        self.bindings.append(binding)
        return binding

    async def _follow(self, binding: DeviceBinding) -> None:
        binding.start()
        assert self._alarms is not None
        for alarm in binding.device.alarms:
            await self._alarms.show(binding, alarm)

    async def stop(self) -> None:
        """Stop following devices (calls in flight finish) and stop serving."""
        for binding in self.bindings:
            await binding.stop()
        if self._started:
            self._started = False
            with contextlib.suppress(Exception):
                await self.server.stop()
        if self._batch_audit is not None:
            self._batch_audit.close()

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def serve_lads(
    devices: Sequence[Device],
    *,
    state: Path | str = "gateway",
    host: str = "127.0.0.1",
    port: int = 4840,
    allow_unsecured_read: bool = False,
    anonymous: bool = True,
    audit: AuditSink | None = None,
    startup_cache: Path | None = None,
) -> Gateway:
    """A LADS gateway for connected `devices`; use as ``async with serve_lads(devices) as gw:``.

    `state` is the folder of the gateway's certificate, trust list and users; `startup_cache`
    the folder of the LADS start-up cache (None: build the address space at each start)."""
    return Gateway(
        devices,
        GatewayConfig(
            state=Path(state),
            host=host,
            port=port,
            allow_unsecured_read=allow_unsecured_read,
            anonymous=anonymous,
            audit=audit,
            startup_cache=startup_cache,
        ),
    )
