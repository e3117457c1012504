"""Per-person signing keys (Ed25519), the `Signer` seam, and the site's trust store.

A key folder holds, per person, ``<user>.key`` (the private key, PKCS#8 PEM encrypted with the
person's passphrase, mode 0600) and ``<user>.pub.json`` (user id, printed name, key id, public
key). The site's trust store is a folder of such ``.pub.json`` files, or one JSON file
``{"keys": [...]}``; a key with ``revoked_at`` is revoked from that time on.

A site that keeps its keys in an HSM or a PKI implements `Signer` (a key id, the raw public key
and a ``sign(message)``) and passes it wherever cellauto takes a signer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from cellauto.errors import SigningKeyError
from cellauto.records.files import write_new
from cellauto.schema import ElectronicSignature, canonical_json

ALGORITHM = "ed25519"
_MESSAGE_PREFIX = b"cellauto-signature-v1\n"
_USER = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")


@runtime_checkable
class Signer(Protocol):
    """What signs: a person's key in a file here, or one held by an HSM or a PKI."""

    @property
    def user_id(self) -> str: ...

    @property
    def printed_name(self) -> str: ...

    @property
    def key_id(self) -> str: ...

    @property
    def algorithm(self) -> str: ...

    def public_key(self) -> bytes:
        """The raw public key."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The signature of `message`."""
        ...


def key_id_of(public_key: bytes) -> str:
    """A key's id: the algorithm and the first 32 hex digits of its SHA-256."""
    return f"{ALGORITHM}:{hashlib.sha256(public_key).hexdigest()[:32]}"


def signing_message(signature: ElectronicSignature) -> bytes:
    """The bytes a key signs: printed name, user id, meaning, time and the signed hash."""
    return _MESSAGE_PREFIX + canonical_json(signature.model_dump(mode="json"))


def cryptographic_signature(signature: ElectronicSignature, signer: Signer) -> dict[str, str]:
    """The fields a signature entry's value carries for a key-made signature."""
    return {
        "algorithm": signer.algorithm,
        "key_id": signer.key_id,
        "public_key": base64.b64encode(signer.public_key()).decode(),
        "signature": base64.b64encode(signer.sign(signing_message(signature))).decode(),
    }


@dataclass(frozen=True)
class PublicKey:
    """A person's public key as the trust store knows it."""

    user_id: str
    printed_name: str
    key_id: str
    public_key: bytes
    algorithm: str = ALGORITHM
    created: datetime | None = None
    revoked_at: datetime | None = None

    def verify(self, message: bytes, signature: bytes) -> bool:
        """True if `signature` is this key's signature of `message`."""
        if self.algorithm != ALGORITHM:
            return False
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        """The ``.pub.json`` form."""
        data: dict[str, Any] = {
            "user_id": self.user_id,
            "printed_name": self.printed_name,
            "key_id": self.key_id,
            "algorithm": self.algorithm,
            "public_key": base64.b64encode(self.public_key).decode(),
        }
        if self.created is not None:
            data["created"] = self.created.isoformat()
        if self.revoked_at is not None:
            data["revoked_at"] = self.revoked_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: Any, where: str) -> PublicKey:
        """Read the ``.pub.json`` form; SigningKeyError naming `where` if it is not one."""
        try:
            raw = base64.b64decode(str(data["public_key"]), validate=True)
            created, revoked = data.get("created"), data.get("revoked_at")
            key = cls(
                user_id=str(data["user_id"]),
                printed_name=str(data.get("printed_name", data["user_id"])),
                key_id=str(data["key_id"]),
                public_key=raw,
                algorithm=str(data.get("algorithm", ALGORITHM)),
                created=datetime.fromisoformat(created) if created else None,
                revoked_at=datetime.fromisoformat(revoked) if revoked else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SigningKeyError(f"{where}: not a public key file: {exc}") from None
        if key.key_id != key_id_of(raw):
            raise SigningKeyError(f"{where}: key_id does not match the public key")
        return key


class FileSigner:
    """A person's Ed25519 key from a key folder, unlocked with their passphrase."""

    def __init__(self, private: Ed25519PrivateKey, public: PublicKey) -> None:
        self._private = private
        self._public = public

    @property
    def user_id(self) -> str:
        return self._public.user_id

    @property
    def printed_name(self) -> str:
        return self._public.printed_name

    @property
    def key_id(self) -> str:
        return self._public.key_id

    @property
    def algorithm(self) -> str:
        return ALGORITHM

    def public_key(self) -> bytes:
        return self._public.public_key

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


def default_key_dir() -> Path:
    """``$CELLAUTO_KEYS``, else ``~/.config/cellauto/keys``."""
    configured = os.environ.get("CELLAUTO_KEYS")
    return Path(configured) if configured else Path.home() / ".config" / "cellauto" / "keys"


def _check_user(user_id: str) -> None:
    if not user_id or len(user_id) > 128 or not set(user_id) <= _USER or user_id[0] == ".":
        raise SigningKeyError(
            f"user id {user_id!r}: use 1-128 letters, digits, '.', '_', '-' or '@' (not "
            "starting with '.')"
        )


def create_key(folder: Path, user_id: str, printed_name: str, passphrase: bytes) -> PublicKey:
    """Create ``<user>.key`` (encrypted with `passphrase`, mode 0600) and ``<user>.pub.json``
    in `folder`; never replaces an existing key."""
    _check_user(user_id)
    if len(passphrase) < 8:
        raise SigningKeyError(f"key for {user_id}: the passphrase needs at least 8 characters")
    private = Ed25519PrivateKey.generate()
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    public = PublicKey(
        user_id=user_id,
        printed_name=printed_name,
        key_id=key_id_of(raw),
        public_key=raw,
        created=datetime.now(UTC),
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        write_new(folder / f"{user_id}.key", pem, mode=0o600)
        text = json.dumps(public.to_json(), indent=2, sort_keys=True) + "\n"
        write_new(folder / f"{user_id}.pub.json", text.encode(), mode=0o644)
    except FileExistsError:
        raise SigningKeyError(
            f"{folder}: a key for {user_id} exists; keys are never replaced (revoke it in the "
            "trust store and create one under another user id)"
        ) from None
    return public


def load_signer(folder: Path, user_id: str, passphrase: bytes) -> FileSigner:
    """The signer of `user_id` from `folder`, unlocked with `passphrase`."""
    _check_user(user_id)
    public = read_public_key(folder / f"{user_id}.pub.json")
    file = folder / f"{user_id}.key"
    try:
        private = serialization.load_pem_private_key(file.read_bytes(), passphrase)
    except FileNotFoundError:
        raise SigningKeyError(f"{file}: no key for {user_id} (cellauto keys create)") from None
    except (ValueError, TypeError):
        raise SigningKeyError(f"{file}: wrong passphrase, or not a cellauto key") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningKeyError(f"{file}: not an Ed25519 key")
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    if raw != public.public_key:
        raise SigningKeyError(f"{file}: does not match {user_id}.pub.json")
    return FileSigner(private, public)


def read_public_key(file: Path) -> PublicKey:
    """One ``.pub.json`` file."""
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SigningKeyError(f"{file}: no such public key") from None
    except (OSError, ValueError) as exc:
        raise SigningKeyError(f"{file}: cannot read: {exc}") from None
    return PublicKey.from_json(data, str(file))


def list_keys(folder: Path) -> list[PublicKey]:
    """The public keys in a key folder (or trust-store folder), by user id."""
    if not folder.is_dir():
        return []
    return [read_public_key(file) for file in sorted(folder.glob("*.pub.json"))]


class TrustStore:
    """The public keys a site trusts: a folder of ``.pub.json`` files or one JSON file."""

    def __init__(self, keys: list[PublicKey], source: str) -> None:
        self.keys = {key.key_id: key for key in keys}
        self.source = source

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TrustStore:
        """Read a trust store folder or file."""
        where = Path(path)
        if where.is_dir():
            return cls(list_keys(where), str(where))
        try:
            data = json.loads(where.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SigningKeyError(f"{where}: no such trust store") from None
        except (OSError, ValueError) as exc:
            raise SigningKeyError(f"{where}: cannot read the trust store: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
            raise SigningKeyError(f'{where}: a trust store file is {{"keys": [...]}}')
        keys = [
            PublicKey.from_json(item, f"{where}: keys[{i}]") for i, item in enumerate(data["keys"])
        ]
        return cls(keys, str(where))
