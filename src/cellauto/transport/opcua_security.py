"""Secure OPC UA sessions from the client side: Basic256Sha256 with Sign or SignAndEncrypt, and
the application instance certificate cellauto presents, made on first use and then kept.

The certificate and its key live in cellauto's state folder (``$CELLAUTO_STATE_DIR``, else
``$XDG_STATE_HOME/cellauto``, else ``~/.local/state/cellauto``), under ``opcua/pki/own/``
(``cert.der``, ``key.pem``; the folder is the user's only). asyncua makes them: RSA 2048,
self-signed, valid one year, made again when missing, expired or made for another host. A server
that checks client certificates refuses it until its administrator trusts it (for cellauto's
gateway: ``cellauto gateway --trust <cert.der>``).

The server is verified too (ADR 0029): the certificate it presents must be the one named by
``server_cert=<file>`` (DER or PEM) when given, else the one pinned for its ``host:port`` at the
first secure connection (``opcua/pki/servers/<host>_<port>.der``). Any other certificate is
refused with `ServerCertificateRefused`; the session is bound to the certificate's key, so a
server that merely copies a trusted certificate cannot complete it."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from cellauto.errors import ConnectionLost, DeviceOptionError, ServerCertificateRefused
from cellauto.records.files import write_new

__all__ = ["SECURITY_MODES", "ClientSecurity", "fingerprint", "state_dir"]

_log = logging.getLogger("cellauto.transport.opcua")

SECURITY_MODES = {
    "sign": ua.MessageSecurityMode.Sign,
    "sign_encrypt": ua.MessageSecurityMode.SignAndEncrypt,
}
"""The modes a URL names (``?security=sign`` or ``?security=sign_encrypt``), policy
Basic256Sha256."""


def state_dir() -> Path:
    """The folder where cellauto keeps what it made and must find again."""
    configured = os.environ.get("CELLAUTO_STATE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "cellauto"


def fingerprint(der: bytes) -> str:
    """A certificate's SHA-256 fingerprint, as colon-separated hex pairs."""
    return hashlib.sha256(der).digest().hex(":").upper()


@dataclass(frozen=True)
class ClientSecurity:
    """How `device` secures its channel: Basic256Sha256 in `mode` with the certificate and key
    under `pki` (made at the first `apply`), accepting only the server certificate in
    `server_cert`, or else the one pinned under `pki` at the first connection."""

    mode: ua.MessageSecurityMode
    pki: Path
    device: str = ""
    server_cert: Path | None = None

    @classmethod
    def named(
        cls, mode: str, *, device: str = "", server_cert: Path | None = None
    ) -> ClientSecurity:
        """The security a URL names (a key of `SECURITY_MODES`), with the kept certificate."""
        return cls(SECURITY_MODES[mode], state_dir() / "opcua" / "pki", device, server_cert)

    @property
    def certificate(self) -> Path:
        """The client's application instance certificate (DER)."""
        return self.pki / "own" / "cert.der"

    @property
    def private_key(self) -> Path:
        """Its private key (PEM)."""
        return self.pki / "own" / "key.pem"

    @property
    def application_uri(self) -> str:
        """The ApplicationUri the certificate names and the session announces."""
        return f"urn:{socket.gethostname()}:cellauto:client"

    def pinned(self, url: str) -> Path:
        """Where the certificate of the server at `url` is pinned at the first connection."""
        parts = urlsplit(url)
        return self.pki / "servers" / f"{parts.hostname}_{parts.port or 4840}.der"

    def check_server(self, url: str, presented: bytes) -> None:
        """Accept the server certificate `presented` (DER) at `url`, or raise
        `ServerCertificateRefused`; pins it if `url` has no pinned one and none is named."""
        if self.server_cert is not None:
            self._match(url, presented, self._named_certificate(), self.server_cert, pinned=False)
            return
        pin = self.pinned(url)
        pin.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_new(pin, presented)
        except FileExistsError:
            self._match(url, presented, pin.read_bytes(), pin, pinned=True)
        else:
            _log.warning(
                "%s: trusting %s's certificate on first use (SHA-256 %s), pinned in %s",
                self.device,
                url,
                fingerprint(presented),
                pin,
            )

    def _named_certificate(self) -> bytes:
        assert self.server_cert is not None
        try:
            data = self.server_cert.read_bytes()
            loaded = (
                x509.load_pem_x509_certificate(data)
                if data.lstrip().startswith(b"-----BEGIN")
                else x509.load_der_x509_certificate(data)
            )
        except (OSError, ValueError) as exc:
            message = f"cannot read a certificate from {self.server_cert}: {exc}"
            raise DeviceOptionError(self.device, "server_cert", message) from exc
        return loaded.public_bytes(Encoding.DER)

    def _match(
        self, url: str, presented: bytes, trusted: bytes, file: Path, *, pinned: bool
    ) -> None:
        if presented != trusted:
            raise ServerCertificateRefused(
                self.device,
                f"connect {url}",
                presented=fingerprint(presented),
                trusted=fingerprint(trusted),
                file=str(file),
                pinned=pinned,
            )

    def _own_folder(self) -> None:
        own = self.certificate.parent
        own.mkdir(parents=True, exist_ok=True)
        own.chmod(0o700)  # the private key is the user's only

    async def apply(self, client: Client) -> None:
        """Make or check the certificate, then set `client`'s security (before it connects;
        asyncua asks the server's endpoints for the server certificate, which is checked)."""
        self._own_folder()
        await setup_self_signed_certificate(
            self.private_key,
            self.certificate,
            self.application_uri,
            socket.gethostname(),
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            {"commonName": "cellauto client", "organizationName": "cellauto"},
        )
        client.application_uri = self.application_uri
        await client.set_security(
            SecurityPolicyBasic256Sha256,
            str(self.certificate),
            str(self.private_key),
            mode=self.mode,
        )
        presented = client.security_policy.peer_certificate
        if presented is None:  # asyncua always sets it for Basic256Sha256
            raise ConnectionLost(self.device, "connect", "the server presented no certificate")
        self.check_server(client.server_url.geturl(), presented)
