"""The one seam every byte passes: framing, byte-stream links (TCP, serial, pty), the stream
transport with reconnect and heartbeat, and capture/replay. The OPC UA and Modbus families live
in `cellauto.transport.opcua` and `cellauto.transport.modbus`."""

from .base import Backoff, ConnectionEvent, ConnectionState, FrameTransport
from .capture import CaptureRecord, CaptureWriter, ReplayTransport, read_capture
from .framing import (
    SUM8_HEX,
    XOR8_HEX,
    Checksum,
    Framer,
    LengthPrefixFramer,
    LineFramer,
    StxEtxFramer,
)
from .links import Connector, FdLink, Link, SerialConnector, StreamLink, TcpConnector
from .stream import Heartbeat, StreamTransport

__all__ = [
    "SUM8_HEX",
    "XOR8_HEX",
    "Backoff",
    "CaptureRecord",
    "CaptureWriter",
    "Checksum",
    "ConnectionEvent",
    "ConnectionState",
    "Connector",
    "FdLink",
    "FrameTransport",
    "Framer",
    "Heartbeat",
    "LengthPrefixFramer",
    "LineFramer",
    "Link",
    "ReplayTransport",
    "SerialConnector",
    "StreamLink",
    "StreamTransport",
    "StxEtxFramer",
    "TcpConnector",
    "read_capture",
]
