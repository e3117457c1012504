"""Capture every frame a transport sends and receives, and replay a capture as a transport.

A capture is JSON Lines: a header `{"cellauto_capture": 1, "device": ...}`, then one record per
frame `{"t": seconds since open (monotonic), "dir": "out" | "in", "hex": payload}`; a bad
incoming frame is `{"t", "dir": "in", "error": reason, "hex": raw bytes}`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self

from cellauto.errors import ConnectionLost, DeviceTimeout, FramingError, ReplayMismatch

from .base import ConnectionEvent, ConnectionState, EventHub

__all__ = ["CaptureRecord", "CaptureWriter", "ReplayTransport", "read_capture"]

CAPTURE_VERSION = 1


@dataclass(frozen=True)
class CaptureRecord:
    """One captured frame: its direction, time offset, payload and, if bad, the reason."""

    t: float
    dir: Literal["out", "in"]
    data: bytes
    error: str | None = None


class CaptureWriter:
    """Appends frames to a JSON Lines capture file, flushed per record."""

    def __init__(self, path: str | Path, device: str) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None
        self._device = device
        self._t0 = 0.0

    def open(self) -> None:
        if self._file is None:
            self._file = self.path.open("w", encoding="utf-8")
            self._t0 = time.monotonic()
            self._write({"cellauto_capture": CAPTURE_VERSION, "device": self._device})

    def record(self, direction: Literal["out", "in"], data: bytes, error: str = "") -> None:
        entry: dict[str, object] = {"t": round(time.monotonic() - self._t0, 6), "dir": direction}
        if error:
            entry["error"] = error
        entry["hex"] = data.hex()
        self._write(entry)

    def _write(self, entry: dict[str, object]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(entry) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_capture(path: str | Path) -> list[CaptureRecord]:
    """The frame records of a capture file, in order."""
    records = []
    with Path(path).open(encoding="utf-8") as file:
        for line in file:
            if not line.strip():
                continue
            entry = json.loads(line)
            if "cellauto_capture" in entry:
                continue
            records.append(
                CaptureRecord(
                    float(entry["t"]),
                    "out" if entry["dir"] == "out" else "in",
                    bytes.fromhex(entry["hex"]),
                    entry.get("error"),
                )
            )
    return records


class ReplayTransport:
    """Plays a capture back as a transport, so an adapter can run against recorded traffic.

    Each `send` must equal the next captured outgoing frame (else `ReplayMismatch` naming it).
    A captured incoming frame becomes receivable once every outgoing frame before it has been
    sent; a captured bad frame is raised as its `FramingError`. Timing is not reproduced.
    """

    def __init__(self, capture: str | Path, *, device: str = "replay") -> None:
        self.device = device
        self.records = read_capture(capture)
        self._outs = [i for i, r in enumerate(self.records) if r.dir == "out"]
        self._ins = [i for i, r in enumerate(self.records) if r.dir == "in"]
        self._sent = 0
        self._received = 0
        self._progress = asyncio.Event()
        self._open = False
        self._hub = EventHub()
        self._lock = asyncio.Lock()

    @property
    def finished(self) -> bool:
        """Whether every captured frame has been sent and received."""
        return self._sent == len(self._outs) and self._received == len(self._ins)

    async def open(self) -> None:
        self._open = True
        self._hub.publish(self.device, ConnectionEvent(ConnectionState.CONNECTED, "replay"))

    async def close(self) -> None:
        if self._open:
            self._open = False
            self._hub.publish(self.device, ConnectionEvent(ConnectionState.DISCONNECTED, "closed"))
            self._hub.end()
            self._progress.set()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _check_open(self, operation: str) -> None:
        if not self._open:
            raise ConnectionLost(self.device, operation, "replay transport is not open")

    async def send(self, payload: bytes, *, operation: str = "send") -> None:
        self._check_open(operation)
        expected = (
            self.records[self._outs[self._sent]].data if self._sent < len(self._outs) else None
        )
        if expected != payload:
            raise ReplayMismatch(self.device, operation, self._sent, expected, payload)
        self._sent += 1
        self._progress.set()

    def _next_in_ready(self) -> bool:
        if self._received >= len(self._ins):
            return False
        position = self._ins[self._received]
        return self._sent >= len(self._outs) or self._outs[self._sent] > position

    async def receive(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 - the per-request timeout is the API
        *,
        operation: str = "receive",
    ) -> bytes:
        self._check_open(operation)
        try:
            async with asyncio.timeout(timeout):
                while not self._next_in_ready():
                    if self._received >= len(self._ins) and timeout is None:
                        raise ConnectionLost(self.device, operation, "end of the capture")
                    self._progress.clear()
                    await self._progress.wait()
                    self._check_open(operation)
        except TimeoutError:
            raise DeviceTimeout(self.device, operation, timeout or 0.0) from None
        record = self.records[self._ins[self._received]]
        self._received += 1
        if record.error is not None:
            raise FramingError(self.device, operation, record.error, raw=record.data)
        return record.data

    async def request(
        self,
        payload: bytes,
        timeout: float,  # noqa: ASYNC109 - the per-request timeout is the API
        *,
        operation: str = "request",
    ) -> bytes:
        async with self._lock:
            await self.send(payload, operation=operation)
            return await self.receive(timeout, operation=operation)

    async def _iterate(self) -> AsyncIterator[bytes]:
        while self._open:
            try:
                yield await self.receive()
            except ConnectionLost:
                return

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    def events(self) -> AsyncIterator[ConnectionEvent]:
        return self._hub.subscribe()
