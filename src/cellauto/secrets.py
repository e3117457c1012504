"""Device credentials: where adapters get them, and how URLs are stored without them.

Credentials never enter records, logs or exports. A device URL is recorded by `redact_url`:
without its password and without options that carry secrets. An adapter that needs a user
name and password asks `credentials(name, url)`, which looks, in order, in:

1. the environment: ``CELLAUTO_USERNAME_<NAME>`` and ``CELLAUTO_PASSWORD_<NAME>``, where
   ``<NAME>`` is the credential name (a device id or host) upper-cased, every character other
   than a letter or digit replaced by ``_``;
2. a credentials file, ``$CELLAUTO_CREDENTIALS`` or ``~/.config/cellauto/credentials.json``:
   ``{"<name>": {"username": "...", "password": "..."}}``, which must be readable by its owner
   only (mode 0600 or stricter; anything group- or world-readable is refused);
3. the URL's ``user:password@``, last, so that a URL is never the only place a password can
   live; it is still never recorded.

A device that authenticates with a bearer token asks `bearer_token(name)`, which looks in
``CELLAUTO_TOKEN_<NAME>``, then in the credentials file's ``{"<name>": {"token": "..."}}``. A
token is never taken from a URL (URLs are recorded; a token option would be dropped anyway).

No keyring is needed; a site that has one can export into the environment before the run.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

from cellauto.errors import SecretsError

__all__ = ["Credentials", "SecretsError", "bearer_token", "credentials", "redact_url"]

SECRET_OPTIONS = frozenset({"password", "passwd", "pwd", "secret", "token", "api_key", "apikey"})
"""URL options whose values are secrets: dropped from recorded URLs."""


@dataclass(frozen=True)
class Credentials:
    """A user name and password; the password never shows in ``repr``."""

    username: str
    password: str = field(repr=False)
    source: str = "unknown"


def redact_url(url: str) -> str:
    """`url` without its password and without options that carry secrets."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}@{host}" if user else host
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if k.lower() not in SECRET_OPTIONS]
        if len(kept) != len(pairs):
            query = urlencode(kept)
    prefix = f"{parts.scheme}://" if "://" in url else f"{parts.scheme}:"
    return (
        prefix
        + netloc
        + parts.path
        + (f"?{query}" if query else "")
        + (f"#{parts.fragment}" if parts.fragment else "")
    )


def default_credentials_file() -> Path:
    """``$CELLAUTO_CREDENTIALS``, else ``~/.config/cellauto/credentials.json``."""
    configured = os.environ.get("CELLAUTO_CREDENTIALS")
    if configured:
        return Path(configured)
    return Path.home() / ".config" / "cellauto" / "credentials.json"


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def read_credentials_file(file: Path) -> dict[str, Credentials]:
    """Every user-name-and-password entry of a credentials file (token-only entries are left
    to `bearer_token`); SecretsError if others can read it."""
    found: dict[str, Credentials] = {}
    for name, item in _read_file(file).items():
        if "username" not in item and "password" not in item and "token" in item:
            continue
        if "username" not in item or "password" not in item:
            raise SecretsError(f"credentials file {file}: {name!r} needs username and password")
        found[name] = Credentials(str(item["username"]), str(item["password"]), f"file {file}")
    return found


def _read_file(file: Path) -> dict[str, dict[str, object]]:
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretsError(
            f"credentials file {file} is readable or writable by others (mode "
            f"{stat.S_IMODE(mode):o}); restrict it with `chmod 600 {file}`"
        )
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SecretsError(f"credentials file {file}: cannot read: {exc}") from None
    if not isinstance(data, dict):
        raise SecretsError(f'credentials file {file}: expected {{"<name>": {{...}}}}')
    for name, item in data.items():
        if not isinstance(item, dict):
            raise SecretsError(f"credentials file {file}: {name!r} is not an object")
    return data


def bearer_token(
    name: str, *, environ: Mapping[str, str] | None = None, file: Path | None = None
) -> str | None:
    """The bearer token for `name` (a device id or host): ``CELLAUTO_TOKEN_<NAME>``, then the
    credentials file's ``token`` entry; None if neither has one."""
    env = os.environ if environ is None else environ
    token = env.get(f"CELLAUTO_TOKEN_{_env_name(name)}")
    if token:
        return token
    item = _read_file(file or default_credentials_file()).get(name)
    if item is not None and isinstance(item.get("token"), str) and item["token"]:
        return str(item["token"])
    return None


def credentials(
    name: str,
    url: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    file: Path | None = None,
) -> Credentials | None:
    """The credentials for `name` (a device id or host): environment, then the credentials
    file, then `url`'s userinfo; None if none of them has any."""
    env = os.environ if environ is None else environ
    key = _env_name(name)
    user, password = env.get(f"CELLAUTO_USERNAME_{key}"), env.get(f"CELLAUTO_PASSWORD_{key}")
    if user is not None and password is not None:
        return Credentials(user, password, "environment")
    stored = read_credentials_file(file or default_credentials_file()).get(name)
    if stored is not None:
        return stored
    if url is not None:
        parts = urlsplit(url)
        if parts.username is not None and parts.password is not None:
            return Credentials(parts.username, parts.password, "device URL")
    return None
