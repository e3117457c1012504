"""Loading and validating device profiles (``schemas/devices/<device>.toml``)."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cellauto.errors import ProfileError
from cellauto.resources import schemas_dir
from cellauto.schema import DeviceProfile


def profiles_dir() -> Path:
    """Folder of the device profiles that ship with cellauto."""
    return schemas_dir() / "devices"


def available_profiles() -> list[str]:
    """Names of the device profiles that ship with cellauto."""
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """Load a profile by device name (``"cocoon"``) or from a TOML or JSON file.

    Raises ProfileError naming the file, the key path and the reason for each problem.
    """
    path = Path(name_or_path)
    if path.suffix not in (".toml", ".json"):
        path = profiles_dir() / f"{name_or_path}.toml"
        if not path.is_file():
            known = ", ".join(available_profiles()) or "none"
            raise ProfileError(str(path), [("", f"no profile {name_or_path!r}; known: {known}")])
    elif not path.is_file():
        raise ProfileError(str(path), [("", "no such file")])
    return _load(path.resolve(), path.stat().st_mtime_ns)


@cache
def _load(path: Path, _mtime: int) -> DeviceProfile:
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text) if path.suffix == ".toml" else _json(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise ProfileError(str(path), [("", f"cannot read: {exc}")]) from exc
    except RecursionError:
        raise ProfileError(str(path), [("", "cannot read: nested too deeply")]) from None
    try:
        return DeviceProfile.model_validate(raw)
    except RecursionError:
        raise ProfileError(str(path), [("", "nested too deeply to be a device profile")]) from None
    except ValidationError as exc:
        problems = [(key_path(raw, err["loc"]), _reason(err)) for err in exc.errors()]
        raise ProfileError(str(path), problems) from None


def _json(text: str) -> Any:
    import json

    return json.loads(text)


def _reason(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key (check its spelling against the DeviceProfile schema)"
    return message


def key_path(raw: Any, loc: tuple[int | str, ...]) -> str:
    """A readable key path for a pydantic error location, naming list items by their name.

    ``("functional_units", 0, "channels", 1, "unit")`` becomes
    ``functional_units[0](chamber).channels[1](temperature).unit``.
    """
    parts: list[str] = []
    node = raw
    for key in loc:
        if isinstance(key, int):
            label = f"[{key}]"
            node = node[key] if isinstance(node, list) and key < len(node) else None
            name = node.get("name") or node.get("code") if isinstance(node, dict) else None
            parts.append(f"{label}({name})" if isinstance(name, str) else label)
        elif isinstance(node, dict):
            node = node.get(key)
            parts.append(f".{key}" if parts else str(key))
        # else: a union-branch tag pydantic adds below a scalar ('float', 'Quantity'); skip it
    return "".join(parts)
