"""Creating a record's files safely: exclusively (never through a planted symlink), with
explicit modes whatever the umask, and atomically where a file is replaced.

Modes: files 0644 and folders 0755 while a record is written (never group- or world-writable);
once sealed, every file of the record is made read-only (0444). Temporary files get random
names, created with ``O_EXCL | O_NOFOLLOW``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_MODE = 0o644
DIR_MODE = 0o755
SEALED_MODE = 0o444
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC


def create_exclusive(file: Path, mode: int = FILE_MODE) -> int:
    """Create `file`, which must not exist (not even as a symlink); returns the open descriptor.
    The mode is set explicitly, so the umask cannot make it wider."""
    fd = os.open(file, _CREATE, mode)
    os.fchmod(fd, mode)
    return fd


def write_new(file: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Write a new file (FileExistsError if anything is at `file`) and fsync it."""
    fd = create_exclusive(file, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(target: Path) -> Path:
    """A fresh, unguessable temporary name beside `target` (``.<name>.<random>.tmp``)."""
    return target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")


def new_temp(target: Path, mode: int = FILE_MODE) -> Path:
    """Create an empty temporary file beside `target`, exclusively; returns its path."""
    tmp = temp_name(target)
    os.close(create_exclusive(tmp, mode))
    return tmp


def is_temp(file: Path) -> bool:
    """True for a temporary file made by `temp_name` (a leftover of an interrupted write)."""
    return file.name.startswith(".") and file.name.endswith(".tmp")


def atomic_write(file: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace `file` with `data` so that a crash leaves either the old or the new content."""
    tmp = temp_name(file)
    try:
        write_new(tmp, data, mode)
        tmp.replace(file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(file.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir(path: Path) -> None:
    """Create a folder (and parents) with an explicit mode."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(DIR_MODE)


def seal_modes(path: Path) -> None:
    """Make every file of a sealed record read-only (folders stay writable for addenda)."""
    for file in path.rglob("*"):
        if file.is_file() and not file.is_symlink():
            file.chmod(SEALED_MODE)
