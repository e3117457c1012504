"""The OPC UA information models LADS builds on (DI, IA, AMB, Machinery, LADS), loaded into an
asyncua server from the vendored NodeSet2 files in ``schemas/nodesets/``.

Two kinds of node are left out before import, because asyncua's importer cannot place them and
no server serves them: nodes marked ``DesignToolOnly`` (the NodeSet2 schema reserves them for
modelling tools) and the ``Default JSON`` encoding objects (asyncua speaks the binary encoding
only). Everything else is imported as published.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cellauto.resources import schemas_dir

if TYPE_CHECKING:
    from asyncua.server.server import Server

DI_URI = "http://opcfoundation.org/UA/DI/"
IA_URI = "http://opcfoundation.org/UA/IA/"
AMB_URI = "http://opcfoundation.org/UA/AMB/"
MACHINERY_URI = "http://opcfoundation.org/UA/Machinery/"
LADS_URI = "http://opcfoundation.org/UA/LADS/"

NODESET_FILES: tuple[tuple[str, str], ...] = (
    (DI_URI, "Opc.Ua.Di.NodeSet2.xml"),
    (IA_URI, "Opc.Ua.IA.NodeSet2.xml"),
    (AMB_URI, "Opc.Ua.AMB.NodeSet2.xml"),
    (MACHINERY_URI, "Opc.Ua.Machinery.NodeSet2.xml"),
    (LADS_URI, "Opc.Ua.LADS.NodeSet2.xml"),
)
"""(model URI, file) in import order: each model's required models come before it."""

_SKIPPED_NODE = re.compile(
    r'<UAObject NodeId="(?P<id>[^"]+)"[^>]*?'
    r'(?:DesignToolOnly="true"[^>]*|BrowseName="Default JSON"[^>]*)>.*?</UAObject>\s*',
    re.S,
)


@dataclass(frozen=True, slots=True)
class Namespaces:
    """Namespace indexes of the imported models on one server."""

    di: int
    machinery: int
    lads: int
    amb: int


def nodeset_dir() -> Path:
    """Folder of the vendored NodeSet2 files."""
    return schemas_dir() / "nodesets"


@cache
def importable_xml(filename: str) -> str:
    """A NodeSet2 file's text without the nodes asyncua cannot import (see module docstring)."""
    text = (nodeset_dir() / filename).read_text(encoding="utf-8")
    skipped = [m.group("id") for m in _SKIPPED_NODE.finditer(text)]
    text = _SKIPPED_NODE.sub("", text)
    for node_id in skipped:
        text = re.sub(rf"\s*<Reference [^>]*>{re.escape(node_id)}</Reference>", "", text)
    return text


async def load_lads(server: Server) -> Namespaces:
    """Import DI, IA, AMB, Machinery and LADS into `server` (after ``init()``, before start)."""
    existing = await server.get_namespace_array()
    subtypes = cache_reference_subtypes(server)
    for uri, filename in NODESET_FILES:
        if uri not in existing:
            await server.import_xml(xmlstring=importable_xml(filename))
            subtypes.clear()  # the model may have added reference types
    return await namespaces(server)


async def namespaces(server: Server) -> Namespaces:
    """The namespace indexes of the LADS models on `server` (imported already)."""
    array = await server.get_namespace_array()
    return Namespaces(
        di=array.index(DI_URI),
        machinery=array.index(MACHINERY_URI),
        lads=array.index(LADS_URI),
        amb=array.index(AMB_URI),
    )


def cache_reference_subtypes(server: Server) -> dict[Any, frozenset[Any]]:
    """Memoise asyncua's walk of the reference-type hierarchy on this server's view service.

    asyncua re-walks the subtypes of a reference type for every reference of every browse;
    with the LADS models imported that walk dominates building and browsing. The reference
    types are fixed once the models are imported (the gateway adds none), so the walk is
    cached per reference type on this server only (the caller clears it after an import).
    """
    view = server.iserver.view_service
    walk = view._get_sub_ref
    cache: dict[Any, frozenset[Any]] = {}

    def subtypes(ref: Any) -> frozenset[Any]:
        found = cache.get(ref)
        if found is None:
            found = cache[ref] = frozenset(walk(ref))
        return found

    view._get_sub_ref = subtypes  # type: ignore[assignment,method-assign]
    return cache
