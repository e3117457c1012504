"""The LADS start-up cache: a server started from it has the address space a fresh build has,
starting from it leaves it as it was, and an entry that does not check out is built again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cellauto.lads._ua import Node, Server
from cellauto.lads.cache import cache_key, init_with_lads

pytestmark = pytest.mark.asyncio


async def children(node: Node) -> set[str]:
    return {q.to_string() for q in [await c.read_browse_name() for c in await node.get_children()]}


async def lads_types(server: Server) -> dict[str, set[str]]:
    """The browse names under a few LADS, DI and standard nodes."""
    ns = await server.get_namespace_array()
    lads, di = (
        ns.index("http://opcfoundation.org/UA/LADS/"),
        ns.index("http://opcfoundation.org/UA/DI/"),
    )
    nodes = {
        "FunctionalUnitType": f"ns={lads};i=1003",
        "ProgramManagerType": f"ns={lads};i=1006",
        "LADSDeviceType": f"ns={lads};i=1002",
        "DeviceSet": f"ns={di};i=5001",
        "Objects": "i=85",
        "Server": "i=2253",
    }
    return {name: await children(server.get_node(nid)) for name, nid in nodes.items()}


def files(entry: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in entry.iterdir()}


async def test_a_server_started_from_the_cache_has_what_a_fresh_build_has(tmp_path: Path) -> None:
    built = Server()
    built_ns = await init_with_lads(built, tmp_path)
    entry = tmp_path / f"lads-{cache_key()}"
    assert {p.name for p in entry.iterdir()} >= {"nodes", "nodes.dat", "nodes.dir"}
    written = files(entry)

    cached = Server()
    assert await init_with_lads(cached, tmp_path) == built_ns
    assert await cached.get_namespace_array() == await built.get_namespace_array()
    assert await lads_types(cached) == await lads_types(built)
    assert len(await lads_types(cached)) == 6
    manager = (await lads_types(cached))["ProgramManagerType"]
    assert {"ProgramTemplateSet", "ResultSet"} <= {name.split(":")[1] for name in manager}
    assert files(entry) == written  # asyncua read the shelf and did not rewrite it


async def test_an_entry_that_does_not_check_out_is_built_again(tmp_path: Path) -> None:
    await init_with_lads(Server(), tmp_path)
    entry = tmp_path / f"lads-{cache_key()}"
    manifest = json.loads((entry / "nodes").read_text())
    (entry / "nodes").write_text(json.dumps(manifest | {"nodes": manifest["nodes"] - 1}))

    server = Server()
    await init_with_lads(server, tmp_path)
    assert json.loads((entry / "nodes").read_text()) == manifest  # written again, whole
    assert "2:DeviceSet" in await children(server.nodes.objects)
