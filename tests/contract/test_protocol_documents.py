"""The protocol documents are the contract: every payload example in prodigy.md is in its own
grammar and, sent to the simulator in order, gets a reply of the shape the document shows; the
Cocoon's content hash test vector is accepted by the simulator."""

from __future__ import annotations

import re
from pathlib import Path

from asyncua import Client
from contract_wire import Link, decode, frame
from test_cocoon_hash_vector import COCOON_DOC, worked_example

from cellauto.profiles import load_profile
from cellauto_simulators.cocoon import start_simulator as start_cocoon
from cellauto_simulators.prodigy import start_simulator as start_prodigy

PRODIGY_DOC = Path(__file__).parents[2] / "schemas" / "protocols" / "prodigy.md"
UNRESERVED = r"(?:[A-Za-z0-9\-._~]|%[0-9A-Fa-f]{2})*"
PAYLOAD = re.compile(rf"[HRNEL][0-9]{{6}} [A-Z_]+(?: [a-z0-9_.]+={UNRESERVED})*", re.ASCII)


def prodigy_examples() -> list[str]:
    text = PRODIGY_DOC.read_text(encoding="utf-8")
    block = text.split("Examples (payloads):", 1)[1].split("```", 2)[1]
    return [line for line in block.splitlines() if line.strip()]


def test_every_prodigy_example_is_in_the_payload_grammar() -> None:
    examples = prodigy_examples()
    assert len(examples) >= 10
    for line in examples:
        assert PAYLOAD.fullmatch(line), line


async def test_the_prodigy_examples_run_against_the_simulator() -> None:
    sim = await start_prodigy(load_profile("prodigy"), {"speed": "max", "seed": "1"})
    link = await Link.open(sim.url)
    try:
        examples = prodigy_examples()
        for request, shown in zip(examples[::2], examples[1::2], strict=True):
            assert request.startswith("H")
            got = await link.request(request.encode("ascii"))
            want = decode(shown.encode("ascii"))
            assert got[:3] == want[:3], (request, got)
            assert set(got[3]) == set(want[3]), (request, got)
    finally:
        await link.close()
        await sim.stop()


async def test_the_cocoon_content_hash_vector_is_accepted() -> None:
    definition, _canonical, digest = worked_example()
    sim = await start_cocoon(load_profile("cocoon"), {"speed": "max"})
    try:
        url = sim.url.replace("cocoon+opcua://", "opc.tcp://")
        async with Client(url) as client:
            ns = await client.get_namespace_index("urn:cellauto:cocoon:v1")
            root = await client.nodes.objects.get_child(f"{ns}:Cocoon")
            await root.call_method(f"{ns}:LoadProtocol", definition, digest)
            problems = await root.call_method(f"{ns}:ValidateProtocol")
            assert problems == '["no cassette seated"]'  # loaded: only the cassette is missing
    finally:
        await sim.stop()


def test_frame_helper_matches_the_document() -> None:
    assert frame(b"H000001 PING")[-2:] == f"{sum(b'H000001 PING') % 256:02X}".encode()
    assert COCOON_DOC.is_file()
