"""SiLA 2 server discovery by mDNS (``_sila._tcp.local.``), as ``cellauto devices --discover``
lists it: name, address and the URL the generic SiLA adapter connects with."""

from __future__ import annotations

import threading
from dataclasses import dataclass

SERVICE = "_sila._tcp.local."


@dataclass(frozen=True)
class Found:
    """One announced SiLA server."""

    name: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"sila+grpc://{self.host}:{self.port}"


def discover(seconds: float = 3.0, interfaces: list[str] | None = None) -> list[Found]:
    """The SiLA servers announcing themselves within `seconds` (on `interfaces`, all if None)."""
    from zeroconf import ServiceBrowser, ServiceListener, Zeroconf

    found: dict[str, Found] = {}
    lock = threading.Lock()

    class Listener(ServiceListener):
        def add_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            info = zc.get_service_info(type_, name, timeout=int(seconds * 1000))
            if info is None or info.port is None:
                return
            addresses = info.parsed_addresses()
            with lock:
                found[name] = Found(name.removesuffix("." + SERVICE), addresses[0], info.port)

        def update_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            self.add_service(zc, type_, name)

        def remove_service(self, zc: Zeroconf, type_: str, name: str) -> None:
            with lock:
                found.pop(name, None)

    zc = Zeroconf(interfaces=interfaces) if interfaces else Zeroconf()
    try:
        browser = ServiceBrowser(zc, SERVICE, Listener())
        threading.Event().wait(seconds)
        browser.cancel()
    finally:
        zc.close()
    with lock:
        return sorted(found.values(), key=lambda f: f.name)
