"""Audit of what clients do through the gateway (OPC UA LADS or SiLA 2).

Every write and method call becomes an `AuditCall`. `BatchAudit` (the default sink) writes each
one into the record of every open `Batch` that has the device connected, with the client as the
actor (``opcua:<user>``; ``sila:client``, as SiLA's core features name no user); it learns
about batches through `cellauto.batch.observe_batches`, so Batch needs no gateway-specific code.
Other sinks (a plant's own audit log) implement `AuditSink`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pydantic import JsonValue

from cellauto.batch import observe_batches

if TYPE_CHECKING:
    from cellauto.batch import Batch
    from cellauto.driver import Device

_log = logging.getLogger("cellauto.gateway.audit")


@dataclass(frozen=True, slots=True)
class AuditCall:
    """One write or call through the gateway, and how it ended."""

    user: str
    """The OPC UA user (user name, certificate user, or 'anonymous'); ``client`` for SiLA."""
    action: str
    """``gateway.<method>``, e.g. ``gateway.StartProgram``, ``gateway.Abort`` or (SiLA)
    ``gateway.ProgramController.RunProgram``."""
    device: Device
    value: JsonValue = None
    outcome: str = "ok"
    """``ok``, ``refused: <why>`` or ``failed: <error>``."""
    extra: dict[str, JsonValue] = field(default_factory=dict)
    protocol: str = "opcua"
    """``opcua`` (the LADS gateway) or ``sila``: the actor's prefix."""


_THROUGH = {"opcua": "through the LADS gateway", "sila": "through the SiLA 2 gateway"}


class AuditSink(Protocol):
    """Receives every gateway write and call."""

    def __call__(self, call: AuditCall) -> None: ...


class BatchAudit:
    """Writes each gateway call into the record of every open batch holding the device."""

    def __init__(self) -> None:
        self._batches: list[Batch] = []
        self._stop: Callable[[], None] | None = observe_batches(self)

    def opened(self, batch: Batch) -> None:
        self._batches.append(batch)

    def closed(self, batch: Batch) -> None:
        if batch in self._batches:
            self._batches.remove(batch)

    def close(self) -> None:
        """Stop watching batches."""
        if self._stop is not None:
            self._stop()
            self._stop = None

    def __call__(self, call: AuditCall) -> None:
        for batch in list(self._batches):
            if not any(d is call.device for d in batch.devices.values()):
                continue
            try:
                batch.writer.audit(
                    f"{call.protocol}:{call.user}",
                    call.action,
                    call.device.device_id,
                    value={"arguments": call.value, "outcome": call.outcome, **call.extra},
                    reason=_THROUGH[call.protocol],
                )
            except Exception:  # a closing batch must not break the gateway
                _log.exception("could not audit %s in batch %s", call.action, batch.batch_id)
