"""Links: one open byte stream (TCP socket, serial port, pty, pyserial URL) with async I/O.

A `Connector` opens a new `Link` each time it is called, so a transport can reconnect.
Serial ports and pseudo-terminals are read with `loop.add_reader` on their file descriptor.
pyserial URL handlers (`socket://`, `loop://`, `rfc2217://`, ...) have no usable descriptor in
general, so one daemon thread per link does blocking reads (50 ms timeout, so close is prompt)
and hands bytes to the loop; writes run in the default executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import termios
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import serial

__all__ = ["Connector", "FdLink", "Link", "SerialConnector", "StreamLink", "TcpConnector"]

_READ_SIZE = 65536


class Link(Protocol):
    """An open byte stream. `read()` returns b"" at end of stream and raises OSError on failure."""

    description: str

    async def read(self) -> bytes: ...

    async def write(self, data: bytes) -> None: ...

    async def aclose(self) -> None: ...


Connector = Callable[[], Awaitable[Link]]
"""Opens a fresh link each call; raises OSError when the peer cannot be reached."""


class StreamLink:
    """A link over an asyncio stream pair (TCP)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, description: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.description = description

    async def read(self) -> bytes:
        return await self._reader.read(_READ_SIZE)

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


class FdLink:
    """A link over a non-blocking file descriptor (serial port, pty), driven by the loop."""

    def __init__(self, fd: int, description: str, on_close: Callable[[], None]) -> None:
        os.set_blocking(fd, False)
        self._fd = fd
        self._on_close = on_close
        self._closed = False
        self.description = description

    async def _ready(self, add: Any, remove: Any) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not fut.done():
                fut.set_result(None)

        add(self._fd, wake)
        try:
            await fut
        finally:
            remove(self._fd)

    async def read(self) -> bytes:
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                return b""
            try:
                return os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                await self._ready(loop.add_reader, loop.remove_reader)
            except OSError as exc:
                if exc.errno == errno.EIO:  # pty whose other side is gone
                    return b""
                raise

    async def write(self, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            if self._closed:
                raise ConnectionResetError("link closed")
            try:
                view = view[os.write(self._fd, view) :]
            except BlockingIOError:
                await self._ready(loop.add_writer, loop.remove_writer)

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close()


class _ThreadLink:
    """A link over a pyserial URL handler: a reader thread feeds the loop."""

    _HIGH_WATER = 1 << 20

    def __init__(self, port: serial.SerialBase, description: str) -> None:
        self._port = port
        self.description = description
        self._loop = asyncio.get_running_loop()
        self._buf = bytearray()
        self._eof: BaseException | None = None
        self._data = asyncio.Event()
        self._drained = threading.Event()
        self._drained.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"cellauto {description}")
        self._thread.daemon = True
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                data = self._port.read(self._port.in_waiting or 1)
                if data:
                    self._drained.clear()
                    self._loop.call_soon_threadsafe(self._arrived, data)
                    while not self._stop.is_set() and not self._drained.wait(0.05):
                        pass
        except Exception as exc:
            if not self._stop.is_set():
                self._loop.call_soon_threadsafe(self._ended, exc)
            return
        self._loop.call_soon_threadsafe(self._ended, EOFError())

    def _arrived(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) < self._HIGH_WATER:
            self._drained.set()
        self._data.set()

    def _ended(self, exc: BaseException) -> None:
        self._eof = exc
        self._data.set()

    async def read(self) -> bytes:
        while not self._buf:
            if self._eof is not None:
                if isinstance(self._eof, EOFError | serial.SerialException):
                    return b""
                raise OSError(f"{self.description}: {self._eof}") from self._eof
            self._data.clear()
            await self._data.wait()
        data = bytes(self._buf)
        self._buf.clear()
        self._drained.set()
        return data

    async def write(self, data: bytes) -> None:
        if self._eof is not None or self._stop.is_set():
            raise ConnectionResetError(f"{self.description} is closed")
        await asyncio.to_thread(self._port.write, data)

    async def aclose(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if hasattr(self._port, "cancel_read"):
            with contextlib.suppress(Exception):
                self._port.cancel_read()
        await asyncio.to_thread(self._thread.join)
        self._port.close()


@dataclass(frozen=True)
class TcpConnector:
    """Connects to `host:port` over TCP."""

    host: str
    port: int
    connect_timeout: float = 5.0

    async def __call__(self) -> Link:
        async with asyncio.timeout(self.connect_timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port)
        return StreamLink(reader, writer, f"tcp://{self.host}:{self.port}")

    def __str__(self) -> str:
        return f"tcp://{self.host}:{self.port}"


@dataclass(frozen=True)
class SerialConnector:
    """Opens a serial port: a device path (`/dev/ttyUSB0`, a pty slave) or a pyserial URL
    (`socket://host:port`, `loop://`, `rfc2217://...`). `settings` go to pyserial
    (`baudrate`, `bytesize`, `parity`, `stopbits`, `rtscts`, ...)."""

    port: str
    settings: dict[str, Any] = field(default_factory=dict)

    async def __call__(self) -> Link:
        if "://" in self.port:
            opened = await asyncio.to_thread(
                serial.serial_for_url, self.port, timeout=0.05, **self.settings
            )
            return _ThreadLink(opened, self.port)
        port = serial.Serial(self.port, timeout=0, **self.settings)
        # VMIN=1 makes an empty non-blocking read fail with EAGAIN instead of returning b"",
        # so b"" keeps meaning hang-up.
        attrs = termios.tcgetattr(port.fileno())
        attrs[6][termios.VMIN], attrs[6][termios.VTIME] = 1, 0
        termios.tcsetattr(port.fileno(), termios.TCSANOW, attrs)
        return FdLink(port.fileno(), self.port, port.close)

    def __str__(self) -> str:
        return self.port
