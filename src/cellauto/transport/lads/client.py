"""`LadsClient`: the LADS requests an adapter makes, over one `OpcUaTransport` (adapters do no
OPC UA themselves): browse, the state and program methods, prompts, acknowledge, results.

A refused call raises `OpcUaStatusError` naming the device, the operation and the OPC UA status.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from asyncua import ua
from asyncua.common.node import Node
from asyncua.ua.uaerrors import UaError, UaStatusCodeError

from cellauto.errors import OpcUaStatusError
from cellauto.schema import PropertyValue, Quantity
from cellauto.transport.lads.browse import VIEWS, LadsDeviceView, browse_devices
from cellauto.transport.opcua import OpcUaTransport, plain

ACKNOWLEDGE = "i=9111"
"""AcknowledgeableConditionType.Acknowledge (OPC 10000-9)."""
SERVER = "i=2253"
ALARM_CONDITION_TYPE = "i=2915"
"""AlarmConditionType (OPC 10000-9), to subscribe to conditions."""


FILE_CHUNK = 65536
"""Bytes asked for per FileType Read."""


class LadsClient:
    """LADS requests over `transport` (which must be open)."""

    def __init__(self, transport: OpcUaTransport) -> None:
        self.transport = transport

    @property
    def device(self) -> str:
        return self.transport.device

    def _record(self, op: str, args: list[Any], result: Any, *, ordered: bool = False) -> None:
        """Put a LADS answer in the transport's capture, if it has one (see `LadsReplay`):
        `ordered` (a method call) among the transport's requests, else beside them."""
        direction = "out" if ordered else "lads"
        self.transport._capture_record({"op": op, "dir": direction, "args": args, "result": result})

    async def browse(self) -> list[LadsDeviceView]:
        """Every LADS device of the server."""
        views = await browse_devices(await self.transport.client("browse"))
        if self.transport._capture is not None:  # a whole device view: only when recording
            self._record("lads.browse", [], VIEWS.dump_python(views, mode="json"))
        return views

    async def call(self, operation: str, obj: str, method: str, *args: Any) -> Any:
        """Call `method` (NodeId string) on `obj`; OpcUaStatusError if the server refuses."""
        client = await self.transport.client(operation)
        try:
            result = await asyncio.wait_for(
                client.get_node(obj).call_method(ua.NodeId.from_string(method), *args),
                self.transport.timeout,
            )
        except UaStatusCodeError as exc:
            status = ua.StatusCode(exc.code).name
            self._record("lads.call", [obj, method], {"status": status}, ordered=True)
            raise OpcUaStatusError(self.device, operation, status) from exc
        self._record("lads.call", [obj, method], {"value": plain(result)}, ordered=True)
        return result

    async def start_program(
        self,
        operation: str,
        obj: str,
        method: str,
        template: str,
        properties: Mapping[str, PropertyValue],
        job: str,
        task: str,
    ) -> str:
        """StartProgram(ProgramTemplateId, Properties, SupervisoryJobId, SupervisoryTaskId,
        Samples) with `properties` as its key-value list and no samples; the
        DeviceProgramRunId it returns."""
        pairs = [
            ua.KeyValuePair(Key=ua.QualifiedName(k), Value=program_property(v))
            for k, v in properties.items()
        ]
        run_id = await self.call(
            operation,
            obj,
            method,
            ua.Variant(template, ua.VariantType.String),
            ua.Variant(pairs, ua.VariantType.ExtensionObject, is_array=True),
            ua.Variant(job, ua.VariantType.String),
            ua.Variant(task, ua.VariantType.String),
            ua.Variant([], ua.VariantType.ExtensionObject, is_array=True),
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
        found: list[str] | None = None
        with contextlib.suppress(UaError):
            enum = await client.get_node(value_node).get_child("0:EnumStrings")
            found = [str(plain(t)) for t in await enum.read_value() or ()]
        self._record("lads.enum_strings", [value_node], found)
        return found

    async def result(self, results: str, run_id: str) -> dict[str, Any] | None:
        """The variables of the ResultSet child named `run_id` (plain values) and its
        ``FileSet`` (a NodeId string), None if the server has no such Result (yet)."""
        client = await self.transport.client("read result")
        refs = await client.get_node(results).get_children_descriptions()
        found = next((r for r in refs if r.BrowseName.Name == run_id), None)
        if found is None:
            self._record("lads.result", [results, run_id], None)
            return None
        fields: dict[str, Any] = {}
        for ref in await client.get_node(found.NodeId).get_children_descriptions():
            if ref.NodeClass == ua.NodeClass.Object and ref.BrowseName.Name == "FileSet":
                fields["FileSet"] = ref.NodeId.to_string()
            elif ref.NodeClass == ua.NodeClass.Variable:
                with contextlib.suppress(UaError):
                    value = await client.get_node(ref.NodeId).read_value()
                    fields[ref.BrowseName.Name] = value if isinstance(value, list) else plain(value)
        self._record("lads.result", [results, run_id], fields)
        return fields

    async def result_files(self, fileset: str) -> list[tuple[str, str, bytes | None]]:
        """(name, MIME type, content) of each ResultFile in a Result's FileSet; the content is
        downloaded through its FileType ``File`` (None when the server offers none)."""
        client = await self.transport.client("read result files")
        found: list[tuple[str, str, bytes | None]] = []
        for entry in await client.get_node(fileset).get_children():
            fields: dict[str, Any] = {}
            file_node = None
            for ref in await entry.get_children_descriptions():
                if ref.BrowseName.Name == "File" and ref.NodeClass == ua.NodeClass.Object:
                    file_node = client.get_node(ref.NodeId)
                elif ref.NodeClass == ua.NodeClass.Variable:
                    fields[ref.BrowseName.Name] = plain(
                        await client.get_node(ref.NodeId).read_value()
                    )
            name = str(fields.get("Name") or (await entry.read_browse_name()).Name)
            content = await self._download(file_node) if file_node is not None else None
            found.append((name, str(fields.get("MimeType") or "application/octet-stream"), content))
        self._record("lads.result_files", [fileset], [list(f) for f in found])
        return found

    async def _download(self, file: Node) -> bytes:
        """A FileType's bytes: Open for reading, Read in chunks until an empty one, Close."""
        operation = "download result file"
        obj = file.nodeid.to_string()
        methods = {
            ref.BrowseName.Name: ref.NodeId.to_string()
            for ref in await file.get_children_descriptions()
            if ref.NodeClass == ua.NodeClass.Method
        }
        handle = await self.call(
            operation, obj, methods["Open"], ua.Variant(1, ua.VariantType.Byte)
        )
        chunks: list[bytes] = []
        try:
            while chunk := await self.call(
                operation,
                obj,
                methods["Read"],
                ua.Variant(handle, ua.VariantType.UInt32),
                ua.Variant(FILE_CHUNK, ua.VariantType.Int32),
            ):
                chunks.append(bytes(chunk))
        finally:
            await self.call(
                operation, obj, methods["Close"], ua.Variant(handle, ua.VariantType.UInt32)
            )
        return b"".join(chunks)


def program_property(value: PropertyValue) -> ua.Variant:
    """A program parameter as a StartProgram property value: a quantity is its number in the
    template's unit (the driver converted it to that unit; LADS carries no unit here)."""
    if isinstance(value, Quantity):
        return ua.Variant(value.value, ua.VariantType.Double)
    if isinstance(value, bool):
        return ua.Variant(value, ua.VariantType.Boolean)
    if isinstance(value, int):
        return ua.Variant(value, ua.VariantType.Int64)
    if isinstance(value, float):
        return ua.Variant(value, ua.VariantType.Double)
    return ua.Variant(str(value), ua.VariantType.String)
