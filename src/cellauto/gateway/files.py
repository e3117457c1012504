"""A Result's files in its LADS FileSet: one ResultFileType object per file (Name, MimeType)
whose optional ``File`` is an OPC UA FileType (OPC 10000-5 Annex C) served read-only, so a
client downloads the bytes with Open, Read and Close. A file the gateway cannot read (a path
relative to a record it does not know) is listed without ``File``."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from asyncua import ua

from cellauto.lads._ua import Node, ObjectIds, StatusCodes, ident, nid, status
from cellauto.lads.builder import LadsBuilder
from cellauto.schema import ResultFile

READ = 1
"""FileType Open mode bit for reading (OPC 10000-5 C.2.1); any other bit is refused."""


class ServedFiles:
    """The open handles of every file a gateway serves (files are read whole at Open)."""

    def __init__(self, builder: LadsBuilder) -> None:
        self.builder = builder
        self._handles = itertools.count(1)
        self._open: dict[int, tuple[bytes, int]] = {}

    async def add(self, result: Node, files: list[ResultFile]) -> None:
        """List `files` in the FileSet of the Result object `result`."""
        b = self.builder
        fileset = await b.child(result, "FileSet")
        for number, file in enumerate(files, 1):
            entry = await b.instance(
                fileset,
                b.lads("ResultFileType"),
                f"{ident(fileset)}.{number}",
                ua.QualifiedName(file.name, b.idx),
            )
            await b.set(await b.child(entry, "Name"), ua.Variant(file.name, ua.VariantType.String))
            await b.set(
                await b.child(entry, "MimeType"), ua.Variant(file.mime_type, ua.VariantType.String)
            )
            path = _local(file.path)
            if path is not None and await asyncio.to_thread(path.is_file):
                await self._serve(entry, path)

    async def _serve(self, entry: Node, path: Path) -> None:
        b = self.builder
        node = await b.instance(
            entry, b.server.get_node(nid(ObjectIds.FileType)), f"{ident(entry)}.File", b.q("File")
        )
        size = (await asyncio.to_thread(path.stat)).st_size
        values = {
            "Size": ua.Variant(size, ua.VariantType.UInt64),
            "Writable": ua.Variant(False, ua.VariantType.Boolean),
            "UserWritable": ua.Variant(False, ua.VariantType.Boolean),
            "OpenCount": ua.Variant(0, ua.VariantType.UInt16),
        }
        for name, value in values.items():
            await b.set(await b.child(node, name, ns=0), value)

        async def open_file(parent: ua.NodeId, mode: Any) -> Any:
            if _plain(mode) != READ:
                return status(StatusCodes.BadNotWritable)
            handle = next(self._handles)
            self._open[handle] = (await asyncio.to_thread(path.read_bytes), 0)
            return [ua.Variant(handle, ua.VariantType.UInt32)]

        async def read(parent: ua.NodeId, handle: Any, length: Any) -> Any:
            opened = self._open.get(_plain(handle))
            if opened is None:
                return status(StatusCodes.BadInvalidArgument)
            data, at = opened
            chunk = data[at : at + max(int(_plain(length)), 0)]
            self._open[_plain(handle)] = (data, at + len(chunk))
            return [ua.Variant(chunk, ua.VariantType.ByteString)]

        async def close(parent: ua.NodeId, handle: Any) -> Any:
            if self._open.pop(_plain(handle), None) is None:
                return status(StatusCodes.BadInvalidArgument)
            return []

        async def get_position(parent: ua.NodeId, handle: Any) -> Any:
            opened = self._open.get(_plain(handle))
            if opened is None:
                return status(StatusCodes.BadInvalidArgument)
            return [ua.Variant(opened[1], ua.VariantType.UInt64)]

        async def set_position(parent: ua.NodeId, handle: Any, position: Any) -> Any:
            opened = self._open.get(_plain(handle))
            if opened is None:
                return status(StatusCodes.BadInvalidArgument)
            self._open[_plain(handle)] = (opened[0], int(_plain(position)))
            return []

        handlers: dict[str, Callable[..., Awaitable[Any]]] = {
            "Open": open_file,
            "Read": read,
            "Close": close,
            "GetPosition": get_position,
            "SetPosition": set_position,
        }
        for name, handler in handlers.items():
            b.server.link_method(await b.child(node, name, ns=0), handler)


def _local(path: str) -> Path | None:
    """The local file a ``file://`` URL names, else None."""
    if not path.startswith("file://"):
        return None
    return Path(url2pathname(urlparse(path).path))


def _plain(value: Any) -> Any:
    return value.Value if isinstance(value, ua.Variant) else value
