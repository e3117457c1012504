"""Byte-stream wire servers for simulators: a TCP loopback port and a pseudo-terminal.

A server runs a `Handler` per connection (`async (conn) -> None`, `conn.read()` and
`conn.write()`), or a payload callback through `frame_handler(framer_factory, respond)`.
Fault hooks model what the simulator engine injects: `disconnect()` drops live connections,
`unplug()`/`plug()` a pulled cable, `stall()`/`resume()` a device that stops answering,
`corrupt(n)` flips a byte in each of the next n writes (frames), `drop_bytes(n)` loses the
next n outgoing bytes. No device knowledge lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Self

from cellauto.errors import FramingError
from cellauto.transport.framing import Framer
from cellauto.transport.links import FdLink, Link, StreamLink

__all__ = [
    "FramedConnection",
    "Handler",
    "PtyServer",
    "ServerConnection",
    "StreamServer",
    "TcpServer",
    "frame_handler",
    "serve_pty",
    "serve_tcp",
]

logger = logging.getLogger("cellauto.sim.servers")


class _Faults:
    def __init__(self) -> None:
        self.stalled = False
        self.unplugged = False
        self.corrupt_left = 0
        self.drop_left = 0

    @property
    def silent(self) -> bool:
        return self.stalled or self.unplugged

    def outgoing(self, data: bytes) -> bytes:
        if self.corrupt_left and data:
            self.corrupt_left -= 1
            flipped = bytearray(data)
            flipped[len(data) // 2] ^= 0xFF
            data = bytes(flipped)
        if self.drop_left:
            dropped = min(self.drop_left, len(data))
            self.drop_left -= dropped
            data = data[dropped:]
        return data


class ServerConnection:
    """One client's byte stream, as a handler sees it, with the server's faults applied."""

    def __init__(self, link: Link, faults: _Faults) -> None:
        self._link = link
        self._faults = faults
        self.peer = link.description

    async def read(self) -> bytes:
        """The next bytes from the client; b"" when it has gone. Input is lost while the
        server is stalled or unplugged."""
        while True:
            data = await self._link.read()
            if not data or not self._faults.silent:
                return data

    async def write(self, data: bytes) -> None:
        """Send bytes (one call per frame, so `corrupt` hits whole frames)."""
        if self._faults.silent:
            return
        data = self._faults.outgoing(data)
        if data:
            await self._link.write(data)


class FramedConnection:
    """A server connection speaking payloads through a framer."""

    def __init__(self, conn: ServerConnection, framer: Framer) -> None:
        self.conn = conn
        self.framer = framer

    async def send(self, payload: bytes) -> None:
        """Frame and send one payload (also for unsolicited messages)."""
        await self.conn.write(self.framer.encode(payload))

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """Incoming payloads until the client goes; bad frames are logged and skipped."""
        while data := await self.conn.read():
            for item in self.framer.feed(data):
                if isinstance(item, FramingError):
                    logger.warning("%s: %s", self.conn.peer, item.reason)
                else:
                    yield item


Handler = Callable[[ServerConnection], Awaitable[None]]


def frame_handler(
    framer_factory: Callable[[], Framer], respond: Callable[[bytes], Awaitable[bytes | None]]
) -> Handler:
    """A handler that answers each incoming payload with `await respond(payload)` (None: no
    answer)."""

    async def handle(conn: ServerConnection) -> None:
        framed = FramedConnection(conn, framer_factory())
        async for payload in framed:
            reply = await respond(payload)
            if reply is not None:
                await framed.send(reply)

    return handle


class StreamServer:
    """What TCP and pty servers share: the handler, live connections and fault hooks."""

    url: str

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self._faults = _Faults()
        self._sessions: dict[asyncio.Task[None], Link] = {}
        self._timer: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        """Start serving (again a no-op); `url` tells clients where."""
        raise NotImplementedError

    async def close(self) -> None:
        """Stop serving and drop every connection."""
        if self._timer is not None:
            self._timer.cancel()
        await self._drop_sessions()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _serve(self, link: Link) -> None:
        task = asyncio.create_task(self._session(link), name=f"serve {link.description}")
        self._sessions[task] = link

    async def _session(self, link: Link) -> None:
        try:
            await self.handler(ServerConnection(link, self._faults))
        except OSError as exc:
            logger.info("%s: connection ended: %s", link.description, exc)
        except Exception:
            logger.exception("%s: handler failed", link.description)
        finally:
            self._sessions.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            await self._end_link(link)

    async def _end_link(self, link: Link) -> None:
        await link.aclose()

    async def _drop_sessions(self) -> None:
        sessions = list(self._sessions.items())
        self._sessions.clear()
        for task, _ in sessions:
            task.cancel()
        await asyncio.gather(*(task for task, _ in sessions), return_exceptions=True)
        for _, link in sessions:
            await self._end_link(link)

    def _after(self, duration: float | None, action: Callable[[], object]) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if duration is not None:
            self._timer = asyncio.get_running_loop().call_later(duration, action)

    async def disconnect(self) -> None:
        """Drop every live connection now (the client sees the link end)."""
        await self._drop_sessions()

    def stall(self, duration: float | None = None) -> None:
        """Stop answering (input is swallowed, nothing is sent) until `resume()` or
        `duration` s."""
        self._faults.stalled = True
        self._after(duration, self.resume)

    def resume(self) -> None:
        """End a stall."""
        self._faults.stalled = False

    def corrupt(self, frames: int = 1) -> None:
        """Flip the middle byte of each of the next `frames` writes."""
        self._faults.corrupt_left += frames

    def drop_bytes(self, count: int) -> None:
        """Lose the next `count` outgoing bytes."""
        self._faults.drop_left += count


class TcpServer(StreamServer):
    """Serves each TCP client with its own handler run; `url` is `tcp://HOST:PORT`."""

    def __init__(self, handler: Handler, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(handler)
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:  # type: ignore[override]
        return f"tcp://{self.host}:{self.port}"

    async def start(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._accept, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A plain function, so the session is registered before close() can miss it.
        if self._server is None:  # a connection that raced close() or unplug()
            writer.close()
            return
        peer = writer.get_extra_info("peername")
        self._serve(StreamLink(reader, writer, f"{self.url} <- {peer[0]}:{peer[1]}"))

    async def _stop_listening(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def close(self) -> None:
        await self._stop_listening()
        await super().close()

    async def unplug(self, duration: float | None = None) -> None:
        """Pull the cable: drop connections and refuse new ones until `plug()` (or for
        `duration` s)."""
        self._faults.unplugged = True
        await self._stop_listening()
        await self._drop_sessions()
        self._after(duration, lambda: asyncio.ensure_future(self.plug()))

    async def plug(self) -> None:
        """Put the cable back: listen again on the same port."""
        self._faults.unplugged = False
        if self._server is None:
            await self.start()


class PtyServer(StreamServer):
    """Serves one handler run on the master side of a pseudo-terminal in raw mode; `url`
    is the slave's path, which a serial client opens like a port."""

    def __init__(self, handler: Handler) -> None:
        super().__init__(handler)
        self._master = -1
        self._slave = -1
        self._link: FdLink | None = None
        self.url = ""

    async def start(self) -> None:
        if self._link is not None:
            return
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        # The server keeps the slave open too, so the master never sees EIO between clients.
        self.url = os.ttyname(self._slave)
        self._link = FdLink(self._master, self.url, lambda: None)
        self._serve(self._link)

    async def _end_link(self, link: Link) -> None:
        pass  # the pty outlives handler runs; it closes with the server

    async def disconnect(self) -> None:
        """A serial line cannot signal a disconnect: restart the handler run (fresh
        session state); bytes in flight are lost."""
        await self._drop_sessions()
        if self._link is not None:
            self._serve(self._link)

    async def unplug(self, duration: float | None = None) -> None:
        """Pull the cable: nothing passes either way until `plug()` (or for `duration` s)."""
        self._faults.unplugged = True
        self._after(duration, lambda: asyncio.ensure_future(self.plug()))

    async def plug(self) -> None:
        """Put the cable back."""
        self._faults.unplugged = False

    async def close(self) -> None:
        await super().close()
        if self._link is not None:
            await self._link.aclose()
            self._link = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = -1


async def serve_tcp(handler: Handler, host: str = "127.0.0.1", port: int = 0) -> TcpServer:
    """Start a TCP server (port 0: a free one) and return it; see `url`."""
    server = TcpServer(handler, host, port)
    await server.start()
    return server


async def serve_pty(handler: Handler) -> PtyServer:
    """Start a pty server and return it; `url` is the slave path to open."""
    server = PtyServer(handler)
    await server.start()
    return server
