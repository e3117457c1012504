"""The one place cellauto touches pymodbus's client: paced, timed, reconnecting register
requests to one unit, with exception replies raised as typed errors and optional capture."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException

from cellauto.errors import ConnectionLost, DeviceError, DeviceTimeout, ModbusDeviceBusy
from cellauto.transport.base import ConnectionEvent, ConnectionState, EventHub
from cellauto.transport.opcua_capture import Capture
from cellauto.transport.stream import Backoff

from .errors import exception_error
from .regmap import LinkSettings, Table

__all__ = ["PymodbusLink", "RegisterLink"]


class RegisterLink(Protocol):
    """Raw register requests to one unit (bits travel as 0/1 ints)."""

    device: str
    unit_id: int

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def read(
        self, table: Table, address: int, count: int, *, operation: str
    ) -> list[int]: ...

    async def write(
        self, table: Table, address: int, values: list[int], *, operation: str
    ) -> None: ...

    def events(self) -> AsyncIterator[ConnectionEvent]: ...


Sleep = Callable[[float], Awaitable[None]]


class PymodbusLink:
    """Modbus TCP requests over pymodbus's async client.

    Requests go one at a time, at least `settings.min_interval` s apart (pacing); each is bounded
    by `settings.timeout`. A device-busy reply is retried up to `settings.busy_retries` times.
    A dropped link is re-opened with `backoff`; a read that met the drop is retried once, a write
    raises `ConnectionLost` (it may or may not have been applied, so the caller reads back).
    `busy` (a simulator clock's ``busy``) holds virtual time still during each exchange, so a
    max-speed clock does not jump while a request is on the wire (reconnects are not held).
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        device: str,
        settings: LinkSettings | None = None,
        unit_id: int | None = None,
        backoff: Backoff | None = None,
        capture: Capture | None = None,
        on_event: Callable[[ConnectionEvent], None] | None = None,
        now: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        busy: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        self.device = device
        self.settings = settings or LinkSettings()
        self.unit_id = self.settings.unit_id if unit_id is None else unit_id
        self.host = host
        self.port = port or self.settings.port
        self.backoff = backoff or Backoff(initial=0.05, max_delay=2.0, max_attempts=8)
        self.capture = capture
        self.requests = 0
        self._now = now
        self._sleep = sleep
        self._busy = busy
        self._hub = EventHub(on_event)
        self._lock = asyncio.Lock()
        self._last = -float("inf")
        self._open = False
        self._client = self._new_client()

    def _new_client(self) -> AsyncModbusTcpClient:
        return AsyncModbusTcpClient(
            self.host,
            port=self.port,
            timeout=self.settings.timeout,
            retries=0,
            reconnect_delay=0,
            name=self.device,
        )

    async def open(self) -> None:
        """Connect once; `ConnectionLost` if the device does not accept."""
        if not await self._client.connect():
            raise ConnectionLost(
                self.device, "connect", f"no Modbus TCP server at {self.host}:{self.port}"
            )
        self._open = True
        self._publish(ConnectionState.CONNECTED, f"{self.host}:{self.port} unit {self.unit_id}")

    async def close(self) -> None:
        """Disconnect; events end."""
        if self._open:
            self._open = False
            self._client.close()
            self._publish(ConnectionState.DISCONNECTED, "closed")
        self._hub.end()

    async def __aenter__(self) -> PymodbusLink:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def events(self) -> AsyncIterator[ConnectionEvent]:
        """Connection-state changes from now on."""
        return self._hub.subscribe()

    def _publish(self, state: ConnectionState, detail: str, attempts: int = 0) -> None:
        self._hub.publish(self.device, ConnectionEvent(state, detail, attempts))

    async def read(self, table: Table, address: int, count: int, *, operation: str) -> list[int]:
        """`count` registers (or bits, as 0/1) of `table` from `address`."""
        request = {"op": "read", "table": table, "address": address, "count": count}
        response = await self._request(request, operation, retry_on_drop=True)
        if table in ("coils", "discrete"):
            return [int(bit) for bit in response.bits[:count]]
        registers: list[int] = response.registers
        return registers

    async def write(self, table: Table, address: int, values: list[int], *, operation: str) -> None:
        """Write registers (or 0/1 bits to coils) from `address`."""
        request = {"op": "write", "table": table, "address": address, "values": values}
        await self._request(request, operation, retry_on_drop=False)

    def _call(self, request: dict[str, Any]) -> Awaitable[Any]:
        client, unit = self._client, self.unit_id
        table, address = request["table"], request["address"]
        if request["op"] == "read":
            count = request["count"]
            if table == "input":
                return client.read_input_registers(address, count=count, device_id=unit)
            if table == "holding":
                return client.read_holding_registers(address, count=count, device_id=unit)
            if table == "coils":
                return client.read_coils(address, count=count, device_id=unit)
            return client.read_discrete_inputs(address, count=count, device_id=unit)
        values = request["values"]
        if table == "coils":
            if len(values) == 1:
                return client.write_coil(address, bool(values[0]), device_id=unit)
            return client.write_coils(address, [bool(v) for v in values], device_id=unit)
        if len(values) == 1:
            return client.write_register(address, values[0], device_id=unit)
        return client.write_registers(address, values, device_id=unit)

    async def _request(
        self, request: dict[str, Any], operation: str, *, retry_on_drop: bool
    ) -> Any:
        async with self._lock:
            if not self._open:
                raise ConnectionLost(self.device, operation, "link is closed", hint="open it")
            for attempt in range(self.settings.busy_retries + 1):
                response = await self._exchange(request, operation, retry_on_drop)
                if not response.isError():
                    if self.capture is not None:
                        self._record(request, result=_result(request, response))
                    return response
                error = exception_error(
                    self.device,
                    operation,
                    int(response.exception_code),
                    unit=self.unit_id,
                    table=request["table"],
                    address=request["address"],
                )
                self._record(request, error=error)
                if not isinstance(error, ModbusDeviceBusy) or attempt == self.settings.busy_retries:
                    raise error
            raise AssertionError("unreachable")  # pragma: no cover

    async def _exchange(self, request: dict[str, Any], operation: str, retry: bool) -> Any:
        for attempt in (0, 1):
            if not self._client.connected:
                await self._reconnect(operation)
            wait = self._last + self.settings.min_interval - self._now()
            if wait > 0:
                await self._sleep(wait)
            self._last = self._now()
            self.requests += 1
            try:  # pymodbus bounds the wait by settings.timeout (ModbusIOException)
                if self._busy is None:
                    return await self._call(request)
                with self._busy():
                    return await self._call(request)
            except ModbusException as error:
                if self._client.connected and not isinstance(error, ConnectionException):
                    failure: DeviceError = DeviceTimeout(
                        self.device, operation, self.settings.timeout
                    )
                    self._record(request, error=failure)
                    raise failure from None
                self._publish(ConnectionState.RECONNECTING, f"link dropped during {operation}")
                if not retry or attempt:
                    lost = ConnectionLost(
                        self.device,
                        operation,
                        "the link dropped during the request",
                        hint="a write may or may not have been applied: read it back",
                    )
                    self._record(request, error=lost)
                    raise lost from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _reconnect(self, operation: str) -> None:
        self._publish(ConnectionState.RECONNECTING, f"reconnecting to {self.host}:{self.port}")
        self._client.close()
        for delay in self.backoff.delays():
            await self._sleep(delay)
            self._client = self._new_client()
            if await self._client.connect():
                self._publish(ConnectionState.CONNECTED, f"reconnected to {self.host}:{self.port}")
                return
        self._open = False
        self._publish(ConnectionState.LOST, f"gave up reconnecting ({self.backoff.limits()})")
        raise ConnectionLost(
            self.device,
            operation,
            f"could not reconnect to {self.host}:{self.port}",
            hint="check the device and the network, then open the link again",
        )

    def _record(
        self, request: dict[str, Any], *, result: Any = None, error: DeviceError | None = None
    ) -> None:
        if self.capture is None:
            return
        entry = dict(request) | {"unit": self.unit_id}
        if error is not None:
            entry["error"] = _error_record(error)
        else:
            entry["result"] = result
        self.capture.record(entry)


def _result(request: dict[str, Any], response: Any) -> list[int] | None:
    if request["op"] == "write":
        return None
    if request["table"] in ("coils", "discrete"):
        return [int(bit) for bit in response.bits[: request["count"]]]
    return list(response.registers)


def _error_record(error: DeviceError) -> dict[str, Any]:
    record: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    code = getattr(error, "code", None)
    if code is not None:
        record["code"] = code
    return record
