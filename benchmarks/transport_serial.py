"""Serial request/response round trips per second: StreamTransport vs raw pyserial.

Both talk to the same pseudo-terminal, whose master side a thread echoes byte for byte, and do
the same exchange: write `PING n\\n`, read up to the newline. Prints both rates and the ratio
(target >= 0.8). Run: .venv/bin/python benchmarks/transport_serial.py [round_trips]
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
import tty

import serial

from cellauto.transport import LineFramer, SerialConnector, StreamTransport


def echo_forever(master: int, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            data = os.read(master, 65536)
        except OSError:
            return
        os.write(master, data)


def raw_pyserial(path: str, n: int) -> float:
    port = serial.Serial(path, baudrate=115200, timeout=1)
    try:
        start = time.perf_counter()
        for i in range(n):
            port.write(b"PING %d\n" % i)
            if port.read_until(b"\n") != b"PING %d\n" % i:
                raise RuntimeError("raw pyserial: wrong echo")
        return n / (time.perf_counter() - start)
    finally:
        port.close()


async def through_transport(path: str, n: int) -> float:
    connector = SerialConnector(path, {"baudrate": 115200})
    async with StreamTransport(connector, LineFramer(b"\n"), device="bench") as transport:
        start = time.perf_counter()
        for i in range(n):
            if await transport.request(b"PING %d" % i, timeout=1) != b"PING %d" % i:
                raise RuntimeError("transport: wrong echo")
        return n / (time.perf_counter() - start)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    master, slave = os.openpty()
    tty.setraw(slave)
    stop = threading.Event()
    thread = threading.Thread(target=echo_forever, args=(master, stop), daemon=True)
    thread.start()
    path = os.ttyname(slave)
    try:
        raw_pyserial(path, n // 10)  # warm up
        raw = raw_pyserial(path, n)
        ours = asyncio.run(through_transport(path, n))
    finally:
        stop.set()
        os.close(slave)
        os.close(master)
    print(f"raw pyserial:    {raw:9.0f} round trips/s")
    print(f"StreamTransport: {ours:9.0f} round trips/s")
    print(f"ratio:           {ours / raw:9.2f} (target >= 0.8)")


if __name__ == "__main__":
    main()
