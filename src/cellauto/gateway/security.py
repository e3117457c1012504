"""Gateway security: the application instance certificate, the trust list for client
certificates, users with hashed passwords or X.509 certificates, and their roles.

Folder layout under the gateway's state folder (``pki/`` follows OPC UA Part 12 habits)::

    pki/own/cert.der, pki/own/private/key.pem     created on first start, then kept
    pki/trusted/*.der                             client certificates a plant admin trusts
    pki/rejected/*.der                            certificates that were refused, for review
    users.json                                    users: role and argon2 hash, or certificate
"""

from __future__ import annotations

import contextvars
import datetime as dt
import hashlib
import ipaddress
import json
import os
import socket
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from asyncua import ua
from asyncua.common.utils import ServiceError
from asyncua.crypto.permission_rules import PermissionRuleset, User, UserRole
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cellauto.errors import GatewayError
from cellauto.lads._ua import ObjectIds, StatusCodes, nid


class Role(IntEnum):
    """What an OPC UA user may do through the gateway; each role includes the ones below."""

    OBSERVER = 1
    """Browse, read, subscribe."""
    OPERATOR = 2
    """Also: start programs, hold/unhold, suspend/unsuspend, answer prompts, acknowledge and
    confirm alarms."""
    SUPERVISOR = 3
    """Also: stop, abort, clear, reset."""


# -- the application instance certificate --------------------------------------------------


def application_uri(hostname: str | None = None) -> str:
    """The gateway's ApplicationUri (also in its certificate's subjectAltName)."""
    return f"urn:{hostname or socket.gethostname()}:cellauto:gateway"


def ensure_certificate(
    pki: Path, uri: str, *, common_name: str = "cellauto gateway"
) -> tuple[Path, Path]:
    """The (certificate, private key) of this gateway: created on first start, then kept."""
    cert_path = pki / "own" / "cert.der"
    key_path = pki / "own" / "private" / "key.pem"
    if cert_path.is_file() and key_path.is_file():
        return cert_path, key_path
    cert, key = make_certificate(uri, common_name=common_name)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    for folder in ("trusted", "rejected"):
        (pki / folder).mkdir(parents=True, exist_ok=True)
    return cert_path, key_path


def make_certificate(
    uri: str,
    *,
    common_name: str,
    days: int = 5 * 365,
    client: bool = False,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A self-signed OPC UA application instance certificate (RSA 2048, SHA-256) for `uri`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cellauto"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    hosts: list[x509.GeneralName] = [
        x509.UniformResourceIdentifier(uri),
        x509.DNSName(socket.gethostname()),
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
    ]
    usages = (
        [ExtendedKeyUsageOID.CLIENT_AUTH]
        if client
        else [
            ExtendedKeyUsageOID.SERVER_AUTH,
            ExtendedKeyUsageOID.CLIENT_AUTH,
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def thumbprint(cert: x509.Certificate | bytes) -> str:
    """SHA-256 thumbprint (hex) of a certificate, over its DER encoding."""
    der = cert if isinstance(cert, bytes) else cert.public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


class TrustList:
    """Client application certificates: trusted ones accepted, others refused and kept in
    ``rejected/`` so an administrator can review them and move them to ``trusted/``."""

    def __init__(self, pki: Path) -> None:
        self.trusted_dir = pki / "trusted"
        self.rejected_dir = pki / "rejected"
        self.trusted_dir.mkdir(parents=True, exist_ok=True)
        self.rejected_dir.mkdir(parents=True, exist_ok=True)

    def trusted(self) -> set[str]:
        """Thumbprints of the trusted certificates (re-read each time: edits apply at once)."""
        found: set[str] = set()
        for path in self.trusted_dir.iterdir():
            if path.suffix.lower() in (".der", ".cer", ".crt", ".pem"):
                found.add(thumbprint(_load_cert(path)))
        return found

    def trust(self, cert: x509.Certificate | bytes) -> Path:
        """Add a certificate to the trust list."""
        der = cert if isinstance(cert, bytes) else cert.public_bytes(serialization.Encoding.DER)
        path = self.trusted_dir / f"{thumbprint(der)}.der"
        path.write_bytes(der)
        return path

    def rejected(self) -> list[Path]:
        """Certificates refused so far."""
        return sorted(self.rejected_dir.glob("*.der"))

    async def __call__(self, cert: x509.Certificate, app: ua.ApplicationDescription) -> None:
        """asyncua certificate validator: accept a trusted, currently valid certificate."""
        der = cert.public_bytes(serialization.Encoding.DER)
        print_ = thumbprint(der)
        if print_ not in self.trusted():
            (self.rejected_dir / f"{print_}.der").write_bytes(der)
            raise ServiceError(StatusCodes.BadCertificateUntrusted)
        now = dt.datetime.now(dt.UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise ServiceError(StatusCodes.BadCertificateTimeInvalid)


def _load_cert(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    if data.startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


# -- users and roles -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewayUser:
    """One user: a role and a password hash, or a certificate thumbprint (X.509 user token)."""

    name: str
    role: Role
    password_hash: str | None = None
    certificate: str | None = None


class UserStore:
    """Users of the gateway, kept in a JSON file; passwords only as argon2id hashes."""

    def __init__(self, path: Path | None = None, *, anonymous: Role | None = Role.OBSERVER) -> None:
        self.path = path
        self.anonymous = anonymous
        self._hasher = PasswordHasher()
        self._users: dict[str, GatewayUser] = {}
        if path is not None and path.is_file():
            self._load(path)

    def add(self, name: str, role: Role, password: str) -> GatewayUser:
        """Add (or replace) a user name/password user; the password is stored hashed."""
        user = GatewayUser(name, role, password_hash=self._hasher.hash(password))
        self._users[name] = user
        self._save()
        return user

    def add_certificate(self, name: str, role: Role, cert: x509.Certificate | bytes) -> GatewayUser:
        """Add (or replace) a user who authenticates with an X.509 user certificate."""
        user = GatewayUser(name, role, certificate=thumbprint(cert))
        self._users[name] = user
        self._save()
        return user

    def users(self) -> list[GatewayUser]:
        """Every user."""
        return list(self._users.values())

    def check_password(self, name: str, password: str) -> GatewayUser | None:
        """The user if `password` is theirs, else None."""
        user = self._users.get(name)
        if user is None or user.password_hash is None:
            self._hasher.hash(password)  # same cost whether or not the user exists
            return None
        try:
            self._hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        return user

    def by_certificate(self, cert: x509.Certificate | bytes) -> GatewayUser | None:
        """The user whose user certificate this is, else None."""
        print_ = thumbprint(cert)
        return next((u for u in self._users.values() if u.certificate == print_), None)

    def _load(self, path: Path) -> None:
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))["users"]
            for row in rows:
                user = GatewayUser(
                    name=row["name"],
                    role=Role[row["role"].upper()],
                    password_hash=row.get("password_hash"),
                    certificate=row.get("certificate"),
                )
                self._users[user.name] = user
        except (KeyError, ValueError, TypeError) as exc:
            raise GatewayError(
                f"user store {path} is not valid ({exc}); fix or remove it"
            ) from None

    def _save(self) -> None:
        if self.path is None:
            return
        rows = [
            {
                "name": u.name,
                "role": u.role.name.lower(),
                **({"password_hash": u.password_hash} if u.password_hash else {}),
                **({"certificate": u.certificate} if u.certificate else {}),
            }
            for u in self._users.values()
        ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"users": rows}, handle, indent=2)


ANONYMOUS = "anonymous"

_current_user: contextvars.ContextVar[User | None] = contextvars.ContextVar(
    "cellauto_gateway_user", default=None
)


def current_identity(store: UserStore) -> tuple[str, Role | None]:
    """The OPC UA user of the request being served: (name, role); role None = no rights."""
    user = _current_user.get()
    if user is None or user.role is UserRole.Anonymous or not user.name:
        return ANONYMOUS, store.anonymous
    if user.name in {u.name for u in store.users()}:
        return user.name, store._users[user.name].role
    return user.name, None


class GatewayUserManager:
    """asyncua user manager: user name/password and X.509 user tokens from the UserStore."""

    def __init__(self, store: UserStore, trust: TrustList) -> None:
        self.store = store
        self.trust = trust

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        # asyncua passes the secure channel's client certificate for anonymous tokens too;
        # a trusted application certificate that is no user's certificate means anonymous.
        anonymous = User(role=UserRole.Anonymous) if self.store.anonymous is not None else None
        if username is not None:
            found = self.store.check_password(username, password or "")
        elif certificate:
            der = (
                certificate
                if isinstance(certificate, bytes)
                else certificate.public_bytes(serialization.Encoding.DER)
            )
            found = self.store.by_certificate(der)
            if found is None and thumbprint(der) in self.trust.trusted():
                return anonymous
        else:
            return anonymous
        if found is None:
            return None
        return User(role=UserRole.User, name=found.name)


_WRITE_OR_CALL = {
    nid(ObjectIds.WriteRequest_Encoding_DefaultBinary),
    nid(ObjectIds.CallRequest_Encoding_DefaultBinary),
    nid(ObjectIds.HistoryUpdateRequest_Encoding_DefaultBinary),
}
_NODE_MANAGEMENT = {
    nid(ObjectIds.AddNodesRequest_Encoding_DefaultBinary),
    nid(ObjectIds.DeleteNodesRequest_Encoding_DefaultBinary),
    nid(ObjectIds.AddReferencesRequest_Encoding_DefaultBinary),
    nid(ObjectIds.DeleteReferencesRequest_Encoding_DefaultBinary),
    nid(ObjectIds.RegisterServerRequest_Encoding_DefaultBinary),
    nid(ObjectIds.RegisterServer2Request_Encoding_DefaultBinary),
}


class GatewayRuleset(PermissionRuleset):
    """Per-request check asyncua runs before each service: nobody changes the address space,
    anonymous users never write or call (unless the store grants them a role above observer,
    as a loopback simulator's does); and it notes the request's user for the method
    handlers, which check the role each method needs."""

    def __init__(self, store: UserStore) -> None:
        self.store = store

    def check_validity(self, user: User, action_type_id: ua.NodeId, body: Any) -> bool:
        _current_user.set(user)
        if action_type_id in _NODE_MANAGEMENT:
            return False
        if action_type_id in _WRITE_OR_CALL:
            name, role = current_identity(self.store)
            if name == ANONYMOUS:  # only a store that grants anonymous more than reading
                return role is not None and role > Role.OBSERVER
            return role is not None
        return True
