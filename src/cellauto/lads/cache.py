"""The start-up cache of a LADS server's address space.

Filling asyncua's standard address space and importing the LADS models costs seconds of CPU on
every start; the result is the same every time. The first server to start writes the built
nodes to a shelf (asyncua's own lazy-loading start-up format, `Server.init(shelf_file)`);
later servers load nodes from it as they are touched. The cache is keyed by everything the
nodes depend on (the nodeset files, asyncua's version, Python's pickle protocol), lives in the
user's cache folder (``$CELLAUTO_CACHE_DIR``, else ``$XDG_CACHE_HOME/cellauto``, else
``~/.cache/cellauto``), and is written to a private temporary folder renamed into place, so a
reader never sees half a cache. An entry that does not check out is built again.
"""

from __future__ import annotations

import contextlib
import copy
import dbm.dumb
import hashlib
import json
import os
import pickle
import shelve
import shutil
import tempfile
from collections.abc import MutableMapping
from importlib.metadata import version
from pathlib import Path
from typing import cast

from cellauto.lads._ua import Node, ObjectIds, Server, nid
from cellauto.lads.nodesets import (
    NODESET_FILES,
    Namespaces,
    cache_reference_subtypes,
    load_lads,
    namespaces,
    nodeset_dir,
)

FORMAT = 1
"""Bumped when what is cached, or how, changes."""
_SHELF = "nodes"
"""The shelf's name: dbm.dumb writes ``nodes.dat`` and ``nodes.dir``; ``nodes`` itself is the
manifest, because asyncua takes a shelf for present only when a file of its very name exists
(else it builds the standard address space and overwrites the shelf with it)."""
_MANIFEST = _SHELF


def cache_dir() -> Path:
    """The folder of cellauto's caches."""
    configured = os.environ.get("CELLAUTO_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cellauto"


def cache_key() -> str:
    """What the cached nodes depend on, hashed."""
    digest = hashlib.sha256(f"{FORMAT} {version('asyncua')} {pickle.HIGHEST_PROTOCOL}".encode())
    for uri, filename in NODESET_FILES:
        digest.update(uri.encode())
        digest.update((nodeset_dir() / filename).read_bytes())
    return digest.hexdigest()[:24]


async def init_with_lads(server: Server, cache: Path | None) -> Namespaces:
    """``server.init()`` with DI, IA, AMB, Machinery and LADS in its address space: loaded from
    the start-up cache in the folder `cache` (see `cache_dir()`), or built and cached there;
    built only, when `cache` is None.

    A server started from the cache reads nodes from it for as long as it runs, so the cache
    is for servers whose cache folder outlives them (simulators, tests); a plant gateway that
    runs for months builds its own."""
    if cache is None:
        await server.init()
        return await load_lads(server)
    entry = cache / f"lads-{cache_key()}"
    uris = _read_manifest(entry)
    if uris is None:
        await server.init()
        found = await load_lads(server)
        shutil.rmtree(entry, ignore_errors=True)  # an entry that did not check out
        with contextlib.suppress(OSError):
            _write(entry, server, (await server.get_namespace_array())[2:])
        return found
    await server.init(entry / _SHELF)
    array = await server.get_namespace_array()
    ns_array = Node(server.iserver.isession, nid(ObjectIds.Server_NamespaceArray))
    await ns_array.write_value(array[:2] + uris)
    await server.load_data_type_definitions()  # the models' structures and enumerations
    cache_reference_subtypes(server)
    return await namespaces(server)


def _read_manifest(entry: Path) -> list[str] | None:
    """The cached namespace URIs (index 2 on), or None when the entry is missing or does not
    check out (another shelf size than the manifest says)."""
    try:
        manifest = json.loads((entry / _MANIFEST).read_text(encoding="utf-8"))
        with dbm.dumb.open(str(entry / _SHELF), "r") as db:
            if len(db) != manifest["nodes"]:
                return None
        uris = manifest["namespaces"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [str(u) for u in uris] if isinstance(uris, list) else None


def _write(entry: Path, server: Server, uris: list[str]) -> None:
    """Shelve the server's nodes (without method handlers) as `entry`, atomically."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        nodes = server.iserver.aspace._nodes
        db = dbm.dumb.open(str(staging / _SHELF), "n")  # noqa: SIM115 (the Shelf closes it)
        store = cast("MutableMapping[bytes, bytes]", db)
        with shelve.Shelf[object](store, pickle.HIGHEST_PROTOCOL) as shelf:
            for node_id, data in nodes.items():
                stored = copy.copy(data)
                stored.call = None
                shelf[node_id.to_string()] = stored
        manifest = {"nodes": len(nodes), "namespaces": uris}
        (staging / _MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        staging.rename(entry)  # fails when another process got there first: keep theirs
    finally:
        shutil.rmtree(staging, ignore_errors=True)
