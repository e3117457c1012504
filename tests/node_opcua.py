"""The independent node-opcua client of the LADS tests (installed once in tests/gateway/.node)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

GATEWAY_TESTS = Path(__file__).parent / "gateway"
NODE_DIR = GATEWAY_TESTS / ".node"


async def lads_browser() -> Path:
    """The node-opcua LADS browsing script, ready to run with `node` (installs node-opcua-client
    with npm on first use; skips the test where npm or node is missing)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm and node are needed for the independent node-opcua client")
    if not (NODE_DIR / "node_modules" / "node-opcua-client").is_dir():
        NODE_DIR.mkdir(exist_ok=True)
        (NODE_DIR / "package.json").write_text('{"private": true}\n', encoding="utf-8")
        process = await asyncio.create_subprocess_exec(
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--silent",
            "node-opcua-client@2",
            cwd=NODE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, err = await process.communicate()
        assert process.returncode == 0, err.decode()
    script = NODE_DIR / "lads_browse.mjs"
    shutil.copy(GATEWAY_TESTS / "lads_browse.mjs", script)
    return script
