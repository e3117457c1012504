"""Framing helpers: pure, sans-I/O encoders and incremental decoders of byte-stream frames.

A decoder's `feed(data)` returns, in stream order, each complete payload (`bytes`) and a
`FramingError` for each bad frame (garbage, half a frame, wrong checksum, oversize), then keeps
going: a bad frame never costs a later good one where the framing has a sync marker to find it.
Memory is bounded by `max_length`; `reset()` discards a pending half frame and reports it.
Errors come back unbound (device "?"); the transport binds them to its device and operation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from cellauto.errors import FramingError

__all__ = [
    "SUM8_HEX",
    "XOR8_HEX",
    "Checksum",
    "Framer",
    "LengthPrefixFramer",
    "LineFramer",
    "StxEtxFramer",
]

Decoded = bytes | FramingError

_UNBOUND = "?"


def _error(reason: str, raw: bytes | bytearray, operation: str = "decode") -> FramingError:
    return FramingError(_UNBOUND, operation, reason, raw=bytes(raw))


class Framer(Protocol):
    """Turns payloads into frames and a byte stream back into payloads."""

    @property
    def pending(self) -> int:
        """Bytes buffered towards a frame not yet complete."""
        ...

    def encode(self, payload: bytes) -> bytes:
        """The frame carrying `payload`; raises FramingError if it cannot be framed."""
        ...

    def feed(self, data: bytes) -> list[Decoded]:
        """Decode `data` appended to what came before: payloads and errors in stream order."""
        ...

    def reset(self) -> FramingError | None:
        """Forget any half frame (e.g. after a reconnect or a silent gap); report it if any."""
        ...


class LineFramer:
    """Terminator-delimited frames (ASCII lines). Payloads may not contain the terminator.

    A line longer than `max_length` is reported once and skipped up to its terminator.
    """

    def __init__(self, terminator: bytes = b"\r\n", *, max_length: int = 4096) -> None:
        if not terminator:
            raise ValueError("terminator must not be empty")
        self.terminator = terminator
        self.max_length = max_length
        self._buf = bytearray()
        self._scanned = 0
        self._overlong: bytes | None = None  # head of a line being skipped for its length

    def __repr__(self) -> str:
        return f"LineFramer({self.terminator!r}, max_length={self.max_length})"

    @property
    def pending(self) -> int:
        return len(self._buf) + (0 if self._overlong is None else len(self._overlong))

    def encode(self, payload: bytes) -> bytes:
        if self.terminator in payload:
            raise _error(f"payload contains the terminator {self.terminator!r}", payload, "encode")
        if len(payload) > self.max_length:
            raise _error(f"payload longer than {self.max_length} bytes", payload, "encode")
        return payload + self.terminator

    def feed(self, data: bytes) -> list[Decoded]:
        out: list[Decoded] = []
        buf, term = self._buf, self.terminator
        buf += data
        while True:
            at = buf.find(term, self._scanned)
            if at < 0:
                break
            end = at + len(term)
            if self._overlong is not None:
                out.append(self._too_long(self._overlong))
                self._overlong = None
            elif at > self.max_length:
                out.append(self._too_long(buf[: self.max_length]))
            else:
                out.append(bytes(buf[:at]))
            del buf[:end]
            self._scanned = 0
        keep = len(term) - 1  # a terminator may be split across feeds
        if len(buf) > self.max_length + keep:
            if self._overlong is None:
                self._overlong = bytes(buf[: self.max_length])
            del buf[: len(buf) - keep]
        self._scanned = max(0, len(buf) - keep)
        return out

    def _too_long(self, head: bytes | bytearray) -> FramingError:
        return _error(f"line longer than {self.max_length} bytes (raw holds its head)", head)

    def reset(self) -> FramingError | None:
        err = None
        if self._overlong is not None:
            err = self._too_long(self._overlong)
        elif self._buf:
            err = _error("half a line, discarded", self._buf)
        self._buf = bytearray()
        self._scanned = 0
        self._overlong = None
        return err


@dataclass(frozen=True)
class Checksum:
    """A frame checksum: `compute(payload)` gives exactly `size` bytes, appended after ETX.

    Its bytes must never be STX: an STX where the checksum should be means the frame was cut
    short, and starts the next one.
    """

    name: str
    size: int
    compute: Callable[[bytes], bytes]


def _sum8_hex(payload: bytes) -> bytes:
    return b"%02X" % (sum(payload) & 0xFF)


def _xor8_hex(payload: bytes) -> bytes:
    value = 0
    for b in payload:
        value ^= b
    return b"%02X" % value


SUM8_HEX = Checksum("sum8-hex", 2, _sum8_hex)
"""Sum of the payload bytes modulo 256, as two upper-case hex ASCII characters."""
XOR8_HEX = Checksum("xor8-hex", 2, _xor8_hex)
"""XOR of the payload bytes, as two upper-case hex ASCII characters."""

STX, ETX, DLE = 0x02, 0x03, 0x10


class StxEtxFramer:
    """`STX escaped(payload) ETX checksum(payload)`.

    Any payload can be framed: STX, ETX and DLE inside it are sent as DLE followed by the
    byte XOR 0x20 (HDLC-style stuffing), so STX and ETX on the wire always mean frame start
    and end. The checksum covers the unescaped payload and is not escaped (fixed size).
    Bytes outside a frame are reported as garbage; an STX inside a frame reports the half
    frame before it and starts a new one.
    """

    def __init__(self, checksum: Checksum = SUM8_HEX, *, max_length: int = 4096) -> None:
        self.checksum = checksum
        self.max_length = max_length
        self._garbage = bytearray()
        self._frame = bytearray()  # raw wire bytes from STX on
        self._body = bytearray()  # unescaped payload
        self._state: Literal["hunt", "body", "escape", "check", "skip"] = "hunt"
        self._check_left = 0

    def __repr__(self) -> str:
        return f"StxEtxFramer({self.checksum.name}, max_length={self.max_length})"

    @property
    def pending(self) -> int:
        return len(self._garbage) + len(self._frame)

    def encode(self, payload: bytes) -> bytes:
        if len(payload) > self.max_length:
            raise _error(f"payload longer than {self.max_length} bytes", payload, "encode")
        body = bytearray()
        for b in payload:
            if b in (STX, ETX, DLE):
                body += bytes((DLE, b ^ 0x20))
            else:
                body.append(b)
        return bytes((STX,)) + bytes(body) + bytes((ETX,)) + self.checksum.compute(payload)

    def feed(self, data: bytes) -> list[Decoded]:
        out: list[Decoded] = []
        for b in data:
            state = self._state
            if b == STX:
                if state == "hunt":
                    self._flush_garbage(out)
                elif state != "skip":
                    out.append(_error(self._half_reason(), self._frame))
                self._start()
                continue
            if state == "hunt":
                self._garbage.append(b)
                if len(self._garbage) >= self.max_length:
                    self._flush_garbage(out)
                continue
            if state == "skip":
                continue
            self._frame.append(b)
            if state == "escape":
                if b ^ 0x20 in (STX, ETX, DLE):
                    self._body.append(b ^ 0x20)
                    self._state = "body"
                else:
                    out.append(_error(f"invalid escape DLE {b:#04x}", self._frame))
                    self._state = "skip"
            elif state == "check":
                self._check_left -= 1
                if self._check_left == 0:
                    self._finish(out)
            elif b == ETX:
                self._state = "check"
                self._check_left = self.checksum.size
                if self._check_left == 0:
                    self._finish(out)
            elif b == DLE:
                self._state = "escape"
            else:
                self._body.append(b)
                if len(self._body) > self.max_length:
                    out.append(_error(f"frame longer than {self.max_length} bytes", self._frame))
                    self._state = "skip"
        return out

    def _start(self) -> None:
        self._frame = bytearray((STX,))
        self._body = bytearray()
        self._state = "body"

    def _half_reason(self) -> str:
        if self._state == "check":
            return "frame cut short in its checksum"
        return "half a frame (no ETX before the next STX)"

    def _flush_garbage(self, out: list[Decoded]) -> None:
        if self._garbage:
            out.append(_error("garbage between frames", self._garbage))
            self._garbage = bytearray()

    def _finish(self, out: list[Decoded]) -> None:
        payload = bytes(self._body)
        got = bytes(self._frame[len(self._frame) - self.checksum.size :])
        want = self.checksum.compute(payload)
        if got == want:
            out.append(payload)
        else:
            carried = got.decode("ascii", "backslashreplace")
            summed = want.decode("ascii", "backslashreplace")
            name = self.checksum.name
            reason = f"{name} checksum mismatch: frame has {carried}, payload gives {summed}"
            out.append(_error(reason, self._frame))
        self._frame = bytearray()
        self._body = bytearray()
        self._state = "hunt"

    def reset(self) -> FramingError | None:
        err = None
        if self._state not in ("hunt", "skip"):
            err = _error(self._half_reason(), self._frame)
        elif self._garbage:
            err = _error("garbage between frames", self._garbage)
        self._garbage = bytearray()
        self._frame = bytearray()
        self._body = bytearray()
        self._state = "hunt"
        return err


class LengthPrefixFramer:
    """`length (big-endian, 2 or 4 bytes) payload`.

    Binary length-prefixed streams have no sync marker: a header announcing more than
    `max_length` bytes is reported and the decoder slides one byte on to look for a plausible
    header. Frames after garbage are recovered only if the slide lands on them; use
    `reset()` after a silent gap (the transport does) to resynchronise for certain.
    """

    def __init__(self, size: Literal[2, 4] = 2, *, max_length: int = 4096) -> None:
        if size not in (2, 4):
            raise ValueError("length prefix size must be 2 or 4 bytes")
        self.size = size
        self.max_length = min(max_length, (1 << (8 * size)) - 1)
        self._buf = bytearray()

    def __repr__(self) -> str:
        return f"LengthPrefixFramer({self.size}, max_length={self.max_length})"

    @property
    def pending(self) -> int:
        return len(self._buf)

    def encode(self, payload: bytes) -> bytes:
        if len(payload) > self.max_length:
            raise _error(f"payload longer than {self.max_length} bytes", payload, "encode")
        return len(payload).to_bytes(self.size, "big") + payload

    def feed(self, data: bytes) -> list[Decoded]:
        out: list[Decoded] = []
        buf = self._buf
        buf += data
        bad = bytearray()
        while len(buf) >= self.size:
            length = int.from_bytes(buf[: self.size], "big")
            if length > self.max_length:
                bad.append(buf[0])
                del buf[:1]
                continue
            if bad:
                out.append(_error(f"length prefix over {self.max_length} bytes", bad))
                bad = bytearray()
            end = self.size + length
            if len(buf) < end:
                break
            out.append(bytes(buf[self.size : end]))
            del buf[:end]
        if bad:
            out.append(_error(f"length prefix over {self.max_length} bytes", bad))
        return out

    def reset(self) -> FramingError | None:
        err = _error("half a frame, discarded", self._buf) if self._buf else None
        self._buf = bytearray()
        return err
