"""`ProdigyLink`: one session on the Prodigy's framed stream (schemas/protocols/prodigy.md,
sections 3 and 6), and how request fields and reply fields carry cellauto values.

One reader task owns the incoming stream: a reply resolves the one outstanding request (matched
by seq); events (`E`, and `L` frames of a log read-back) are handed on in arrival order. A
request is resent with the same seq on a timeout, NAK E01 or E05; any other NAK is a
`CommandRejected` naming the device, the operation and the protocol table's meaning of the code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from pydantic import JsonValue

from cellauto.adapter import load_protocol
from cellauto.errors import (
    CommandRejected,
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    FramingError,
)
from cellauto.schema import PropertyValue, Quantity
from cellauto.transport import FrameTransport

from .codec import Message, PayloadError, decode, encode, format_number, next_seq, parse_number

__all__ = ["PROTOCOL", "ProdigyLink", "params", "quantities", "reply_data"]

logger = logging.getLogger("cellauto_adapters.prodigy")

PROTOCOL = load_protocol("prodigy")
"""Vendor states, `CMD c=` names and NAK codes (schemas/protocols/prodigy.toml)."""
RETRY_CODES = {"E01": 0.0, "E05": 0.1}  # NAK code -> pause before resending the same seq


class ProdigyLink:
    """Requests and replies over `transport`; `on_event` is awaited for each event frame."""

    def __init__(
        self,
        device: str,
        transport: FrameTransport,
        on_event: Callable[[Message], Awaitable[None]],
        *,
        request_timeout: float,
        retries: int,
    ) -> None:
        self.device = device
        self.transport = transport
        self.on_event = on_event
        self.request_timeout = request_timeout
        self.retries = retries
        self.framing_errors = 0
        """Incoming frames dropped as unreadable (bad checksum, half frames, bad grammar)."""
        self._seq = 0
        self._lock = asyncio.Lock()
        self._pending: tuple[int, asyncio.Future[Message]] | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """Whether a request is in flight (its reply proves the line as a PING would)."""
        return self._lock.locked()

    async def open(self) -> None:
        """Open the transport and start reading."""
        await self.transport.open()
        self._reader = asyncio.create_task(self._read_loop(), name=f"{self.device} reader")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        await self.transport.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def request(
        self, verb: str, fields: dict[str, str], *, operation: str, retries: int | None = None
    ) -> Message:
        """Send one request and return its `R` reply (resent up to `retries` times)."""
        limit = self.retries if retries is None else retries
        async with self._lock:
            self._seq = next_seq(self._seq)
            seq = self._seq
            payload = encode(Message("H", seq, verb, fields))
            attempt = 0
            loop = asyncio.get_running_loop()
            while True:
                future: asyncio.Future[Message] = loop.create_future()
                self._pending = (seq, future)
                try:
                    await self.transport.send(payload, operation=operation)
                    async with asyncio.timeout(self.request_timeout):
                        reply = await future
                except (TimeoutError, ConnectionLost) as exc:
                    attempt += 1
                    if attempt > limit:
                        if isinstance(exc, ConnectionLost):
                            raise
                        raise DeviceTimeout(
                            self.device, operation, self.request_timeout * attempt
                        ) from None
                    if isinstance(exc, ConnectionLost):
                        await asyncio.sleep(self.request_timeout / 4)
                    continue
                finally:
                    self._pending = None
                if reply.kind == "R":
                    return reply
                code = reply.get("code") or "?"
                reason = reply.get("reason") or PROTOCOL.errors.get(code, ("refused", ""))[0]
                if code in RETRY_CODES and attempt < limit:
                    attempt += 1
                    await asyncio.sleep(RETRY_CODES[code])
                    continue
                refusal = f"device answered NAK {code}: {reason}"
                raise CommandRejected(self.device, operation, refusal)

    async def _read_loop(self) -> None:
        while True:
            try:
                message = decode(await self.transport.receive(operation="receive"))
            except FramingError as exc:
                self.framing_errors += 1
                logger.info("%s", exc)
                continue
            except PayloadError as exc:
                self.framing_errors += 1
                logger.warning("%s: receive: %s", self.device, exc.reason)
                continue
            except ConnectionLost:
                return
            if message.kind in ("R", "N"):
                pending = self._pending
                if pending and message.seq in (pending[0], 0) and not pending[1].done():
                    pending[1].set_result(message)
            elif message.kind in ("E", "L"):
                try:
                    await self.on_event(message)
                except DeviceError as exc:
                    logger.warning("%s: cannot apply %s: %s", self.device, message, exc)


def params(parameters: dict[str, PropertyValue]) -> dict[str, str]:
    """Command parameters as `p.<name>` (and `p.<name>.u`) request fields."""
    fields: dict[str, str] = {}
    for name, value in parameters.items():
        if isinstance(value, Quantity):
            fields[f"p.{name}"] = format_number(value.value)
            fields[f"p.{name}.u"] = value.unit
        elif isinstance(value, bool):
            fields[f"p.{name}"] = "true" if value else "false"
        elif isinstance(value, int | float):
            fields[f"p.{name}"] = format_number(value)
        else:
            fields[f"p.{name}"] = value
    return fields


def reply_data(reply: Message) -> dict[str, JsonValue]:
    """An `X` reply's fields as JSON: integers, numbers (``{value, unit}`` with a `.u` field)
    and text."""
    data: dict[str, JsonValue] = {}
    for key, text in reply.fields.items():
        if key == "c" or key.endswith(".u"):
            continue
        if text.isascii() and text.isdigit():
            data[key] = int(text)
            continue
        try:
            number = parse_number(text)
        except PayloadError:
            data[key] = text
            continue
        unit = reply.get(f"{key}.u")
        data[key] = {"value": number, "unit": unit} if unit else number
    return data


def quantities(m: Message, prefix: str) -> dict[str, PropertyValue]:
    """The `<prefix><name>` fields of `m` as numbers, or quantities where `.u` gives a unit."""
    found: dict[str, PropertyValue] = {}
    for name, text in m.prefixed(prefix).items():
        if not name.endswith(".u"):
            number = parse_number(text, f"{m.verb} {prefix}{name}")
            unit = m.get(f"{prefix}{name}.u")
            found[name] = Quantity(value=number, unit=unit) if unit else number
    return found
