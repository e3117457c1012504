"""A Prodigy client written from schemas/protocols/prodigy.md alone (section 1 framing, section 2
payloads): no cellauto import, as an independent integrator would write it."""

from __future__ import annotations

import asyncio
from urllib.parse import quote, unquote

STX, ETX, DLE = 0x02, 0x03, 0x10


def frame(payload: bytes) -> bytes:
    """STX, the payload with STX/ETX/DLE escaped, ETX, the two-hex-digit sum."""
    body = bytearray()
    for b in payload:
        body += bytes([DLE, b ^ 0x20]) if b in (STX, ETX, DLE) else bytes([b])
    return bytes([STX]) + bytes(body) + bytes([ETX]) + f"{sum(payload) % 256:02X}".encode()


def payload_text(kind: str, seq: int, verb: str, **fields: str) -> bytes:
    """A payload: fields percent-encoded as the grammar says (RFC 3986 unreserved kept)."""
    text = f"{kind}{seq:06d} {verb}"
    for key, value in fields.items():
        text += f" {key.replace('__', '.')}={quote(value, safe='-._~')}"
    return text.encode("ascii")


class Link:
    """One TCP connection to the simulator: send payloads, read payloads back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.events: list[bytes] = []

    @classmethod
    async def open(cls, url: str) -> Link:
        host, port = url.split("://")[1].rsplit(":", 1)
        return cls(*await asyncio.open_connection(host, int(port)))

    async def close(self) -> None:
        self.writer.close()
        await self.writer.wait_closed()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_payload(self) -> bytes:
        await self.reader.readuntil(bytes([STX]))
        body = await self.reader.readuntil(bytes([ETX]))
        await self.reader.readexactly(2)
        out, escape = bytearray(), False
        for b in body[:-1]:
            if escape:
                out.append(b ^ 0x20)
                escape = False
            elif b == DLE:
                escape = True
            else:
                out.append(b)
        return bytes(out)

    async def answer(self) -> tuple[str, int, str, dict[str, str]]:
        """The next R or N payload (events before it are kept in `events`), decoded."""
        while True:
            raw = await self.read_payload()
            if raw[:1] in (b"R", b"N"):
                return decode(raw)
            self.events.append(raw)

    async def request(self, payload: bytes) -> tuple[str, int, str, dict[str, str]]:
        await self.send_raw(frame(payload))
        return await self.answer()


def decode(raw: bytes) -> tuple[str, int, str, dict[str, str]]:
    """kind, seq, verb, fields (values decoded)."""
    text = raw.decode("ascii")
    head, verb, *parts = text.split(" ")
    fields = dict(part.split("=", 1) for part in parts)
    return head[0], int(head[1:]), verb, {k: unquote(v) for k, v in fields.items()}
