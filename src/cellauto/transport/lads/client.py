"""`LadsClient`: the LADS requests an adapter makes, over one `OpcUaTransport` (adapters do no
OPC UA themselves): browse, the state and program methods, prompts, acknowledge, results.

A refused call raises `OpcUaStatusError` naming the device, the operation and the OPC UA status.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from asyncua import ua
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from cellauto.errors import OpcUaStatusError
from cellauto.transport.lads.browse import LadsDeviceView, browse_devices
from cellauto.transport.opcua import OpcUaTransport, plain

ACKNOWLEDGE = "i=9111"
"""AcknowledgeableConditionType.Acknowledge (OPC 10000-9)."""
SERVER = "i=2253"
ALARM_CONDITION_TYPE = "i=2915"
"""AlarmConditionType (OPC 10000-9), to subscribe to conditions."""


class LadsClient:
    """LADS requests over `transport` (which must be open)."""

    def __init__(self, transport: OpcUaTransport) -> None:
        self.transport = transport

    @property
    def device(self) -> str:
        return self.transport.device

    async def browse(self) -> list[LadsDeviceView]:
        """Every LADS device of the server."""
        return await browse_devices(await self.transport.client("browse"))

    async def call(self, operation: str, obj: str, method: str, *args: Any) -> Any:
        """Call `method` (NodeId string) on `obj`; OpcUaStatusError if the server refuses."""
        client = await self.transport.client(operation)
        try:
            return await asyncio.wait_for(
                client.get_node(obj).call_method(ua.NodeId.from_string(method), *args),
                self.transport.timeout,
            )
        except UaStatusCodeError as exc:
            status = ua.StatusCode(exc.code).name
            raise OpcUaStatusError(self.device, operation, status) from exc

    async def start_program(
        self, operation: str, obj: str, method: str, template: str, job: str, task: str
    ) -> str:
        """StartProgram(ProgramTemplateId, Properties, SupervisoryJobId, SupervisoryTaskId,
        Samples) without properties or samples; the DeviceProgramRunId it returns."""
        empty = ua.Variant([], ua.VariantType.ExtensionObject, is_array=True)
        run_id = await self.call(
            operation,
            obj,
            method,
            ua.Variant(template, ua.VariantType.String),
            empty,
            ua.Variant(job, ua.VariantType.String),
            ua.Variant(task, ua.VariantType.String),
            empty,
        )
        return str(run_id or "")

    async def call_strings(self, operation: str, obj: str, method: str, *args: str) -> None:
        """Call a method whose inputs are strings (a state method has none)."""
        await self.call(
            operation, obj, method, *(ua.Variant(a, ua.VariantType.String) for a in args)
        )

    async def acknowledge(
        self, operation: str, condition: str, event_id: bytes, comment: str
    ) -> None:
        """Acknowledge(EventId, Comment) on the condition; on the Server object when the server
        has no node for the condition (it serves conditions as events only)."""
        args = (
            ua.Variant(event_id, ua.VariantType.ByteString),
            ua.Variant(ua.LocalizedText(comment), ua.VariantType.LocalizedText),
        )
        try:
            await self.call(operation, condition, ACKNOWLEDGE, *args)
        except OpcUaStatusError as exc:
            if exc.status not in ("BadNodeIdInvalid", "BadNodeIdUnknown"):
                raise
            await self.call(operation, SERVER, ACKNOWLEDGE, *args)

    async def enum_strings(self, value_node: str) -> list[str] | None:
        """A multi-state value variable's EnumStrings (None if unreadable)."""
        client = await self.transport.client("read EnumStrings")
        with contextlib.suppress(UaError):
            enum = await client.get_node(value_node).get_child("0:EnumStrings")
            return [str(plain(t)) for t in await enum.read_value() or ()]
        return None

    async def result(self, results: str, run_id: str) -> dict[str, Any] | None:
        """The variables of the ResultSet child named `run_id` (plain values), None if the
        server has no such Result (yet)."""
        client = await self.transport.client("read result")
        refs = await client.get_node(results).get_children_descriptions()
        found = next((r for r in refs if r.BrowseName.Name == run_id), None)
        if found is None:
            return None
        fields: dict[str, Any] = {}
        for ref in await client.get_node(found.NodeId).get_children_descriptions():
            if ref.NodeClass == ua.NodeClass.Variable:
                with contextlib.suppress(UaError):
                    value = await client.get_node(ref.NodeId).read_value()
                    fields[ref.BrowseName.Name] = value if isinstance(value, list) else plain(value)
        return fields
