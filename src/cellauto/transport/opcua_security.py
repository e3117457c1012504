"""Secure OPC UA sessions from the client side: Basic256Sha256 with Sign or SignAndEncrypt, and
the application instance certificate cellauto presents, made on first use and then kept.

The certificate and its key live in cellauto's state folder (``$CELLAUTO_STATE_DIR``, else
``$XDG_STATE_HOME/cellauto``, else ``~/.local/state/cellauto``), under ``opcua/pki/own/``
(``cert.der``, ``key.pem``; the folder is the user's only). asyncua makes them: RSA 2048,
self-signed, valid one year, made again when missing, expired or made for another host. A server
that checks client certificates refuses it until its administrator trusts it (for cellauto's
gateway: ``cellauto gateway --trust <cert.der>``). The server's own certificate is taken from its
endpoint description and is not checked against a trust list of the client's."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from asyncua import ua
from asyncua.client.client import Client
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from cryptography.x509.oid import ExtendedKeyUsageOID

__all__ = ["SECURITY_MODES", "ClientSecurity", "state_dir"]

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


@dataclass(frozen=True)
class ClientSecurity:
    """How a client secures its channel: Basic256Sha256 in `mode` with the certificate and key
    under `pki` (made at the first `apply`)."""

    mode: ua.MessageSecurityMode
    pki: Path

    @classmethod
    def named(cls, mode: str) -> ClientSecurity:
        """The security a URL names (a key of `SECURITY_MODES`), with the kept certificate."""
        return cls(SECURITY_MODES[mode], state_dir() / "opcua" / "pki")

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

    def _own_folder(self) -> None:
        own = self.certificate.parent
        own.mkdir(parents=True, exist_ok=True)
        own.chmod(0o700)  # the private key is the user's only

    async def apply(self, client: Client) -> None:
        """Make or check the certificate, then set `client`'s security (before it connects;
        asyncua asks the server's endpoints for the server certificate)."""
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
