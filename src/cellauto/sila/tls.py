"""TLS material of a SiLA server: the site's, or a self-signed certificate made on first start
and kept (SiLA 2 servers are encrypted by default; plain only when asked)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sila2.server.encryption import generate_self_signed_certificate


@dataclass(frozen=True)
class Credentials:
    """PEM private key and certificate (chain)."""

    private_key: bytes
    certificate: bytes

    @classmethod
    def from_files(cls, key: Path, certificate: Path) -> Credentials:
        return cls(key.read_bytes(), certificate.read_bytes())


def server_credentials(server_uuid: uuid.UUID, host: str, cert_dir: Path | None) -> Credentials:
    """The kept self-signed credentials of server `server_uuid` in `cert_dir` (made there on
    first use; made fresh and not kept when `cert_dir` is None)."""
    if cert_dir is not None:
        key, cert = cert_dir / f"{server_uuid}.key", cert_dir / f"{server_uuid}.pem"
        if key.is_file() and cert.is_file():
            return Credentials.from_files(key, cert)
    private_key, certificate = generate_self_signed_certificate(server_uuid, host)
    if cert_dir is not None:
        cert_dir.mkdir(parents=True, exist_ok=True)
        key.touch(mode=0o600)
        key.write_bytes(private_key)
        cert.write_bytes(certificate)
    return Credentials(private_key, certificate)
