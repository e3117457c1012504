"""Simulated RBI LabDroid Maholo serving cellauto's Maholo HTTP API (schemas/protocols/maholo.md,
maholo.openapi.json; cellauto's own design) on a loopback port, behind a `SimHandle`.

Options (``maholo+sim://?...`` or ``cellauto sim maholo``): the common set (``speed``, ``seed``,
``port``, ``faults``: ``disconnect@2h:10m`` drops every connection and refuses new ones,
``stall``, any profile alarm code as a kind) and the Maholo's own: ``failures`` (``public``:
robot-command failures at the published rate, the default; ``off``: none; a number: that
rate per command, for tests), ``token`` (the
bearer token the API demands; none by default) and ``tls`` (``1``: serve https with a
self-signed certificate whose PEM is `MaholoSimulator.certificate`).
"""

from __future__ import annotations

import logging
import ssl
import tempfile
from pathlib import Path
from typing import ClassVar

from cellauto.errors import SimOptionError
from cellauto.sim.device import EventLog
from cellauto.sim.handle import SimHandle
from cellauto.sim.servers.http import HttpSimServer

from .device import LOG_SIZE, SimulatedMaholo
from .process import COMMAND_FAILURE_RATE

__all__ = ["MaholoSimulator", "SimulatedMaholo", "start_simulator"]

logger = logging.getLogger("cellauto_simulators.maholo")


class MaholoSimulator(SimHandle):
    """A running Maholo simulator: `device` is the model, `server` the HTTP server."""

    kind: ClassVar[str] = "maholo"
    extra_options: ClassVar[dict[str, str]] = {
        "failures": "public (command failures at the published rate), off, or a rate per command",
        "token": "the bearer token the API demands (none: no authentication)",
        "tls": "1 to serve https with a self-signed certificate",
    }

    device: SimulatedMaholo
    server: HttpSimServer
    certificate: Path | None = None
    """The PEM of the self-signed certificate when served with ``tls=1``."""

    async def _start(self) -> None:
        extra = self.options.extra
        failures = extra.get("failures", "public")
        rate = {"public": COMMAND_FAILURE_RATE, "off": 0.0}.get(failures)
        if rate is None:
            try:
                rate = float(failures)
            except ValueError:
                rate = -1.0
            if not 0.0 <= rate <= 1.0:
                raise SimOptionError(
                    "maholo", "failures", f"{failures!r}: use public, off or a rate in 0..1"
                )
        context = self._tls() if extra.get("tls", "0") in ("1", "true") else None
        log = EventLog(self.clock, self.truth, maxlen=LOG_SIZE)
        self.server = HttpSimServer(
            self.clock,
            log,
            device="maholo",
            token=extra.get("token") or None,
            port=self.options.port or 0,
            ssl_context=context,
        )
        self.device = SimulatedMaholo(
            self.profile,
            self.clock,
            self.server,
            seed=self.options.seed,
            failure_rate=rate,
            truth=self.truth,
        )
        self.server.hold_until_first_client()
        await self.server.start()
        scheme = "https" if context is not None else "http"
        self.url = f"maholo+{scheme}://{self.server.host}:{self.server.port}"
        self.device.publish(force=True)
        self.spawn(self.device.environment_loop())

    def _tls(self) -> ssl.SSLContext:
        from cellauto.sim.servers.tls import self_signed

        folder = Path(tempfile.mkdtemp(prefix="maholo-sim-"))
        cert, key = self_signed(folder)
        self.certificate = cert
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        return context

    async def _disconnect(self, duration: float) -> None:
        """Drop the link for `duration` virtual s, between prompts."""
        await self._outage_between_prompts(
            self.device, duration, self.server.unplug, self.server.plug
        )


start_simulator = MaholoSimulator.launch
"""``start_simulator(profile, options, *, clock=None)``: start a Maholo simulator."""
