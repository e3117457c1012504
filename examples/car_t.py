"""A CAR-T batch across two devices, recorded to Arrow: the main job (`make demo`).

CD4/CD8 selection, activation and lentiviral transduction on a CliniMACS Prodigy; transfer of the
transduced fraction to a Cocoon for expansion with daily in-process samples; harvest; a release
signature. The device URLs name real equipment; run with `sim=True` (as here, unless
CELLAUTO_SIM says otherwise) or `cellauto run examples/car_t.py --sim` to use the simulators,
which speak cellauto's own protocol profiles (the vendors' interfaces are not public).

    python examples/car_t.py             # simulated at maximum speed, record in records/

Records are never overwritten: the first run records B-DEMO-001, each further run the next
number (B-DEMO-002, ...), and the demo says which.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import cellauto
from cellauto.records import keys
from cellauto.schema import SampleInfo

PATIENT = "P-0001"
DEMO_PASSPHRASE = b"demo-only passphrase, not a secret"


def demo_signer(records: Path) -> tuple[cellauto.records.keys.Signer, Path]:
    """DEMO ONLY: a signing key for the demo operator, kept beside the demo's records with a
    passphrase written in this file, and a trust store holding its public key. A real site
    creates each person's key with `cellauto keys create` (their own passphrase) and keeps
    the trust store where only QA can change it."""
    folder = records / "demo-keys-NOT-FOR-PRODUCTION"
    trust = folder / "trust"
    if not (folder / "alice.key").exists():
        keys.create_key(folder, "alice", "Alice (demo operator)", DEMO_PASSPHRASE)
        (folder / "README.txt").write_text(
            "DEMO ONLY. These keys are made by examples/car_t.py with a passphrase written in\n"
            "its source: they prove nothing about who signed. Never trust them in production.\n"
        )
    trust.mkdir(exist_ok=True)
    public = folder / "alice.pub.json"
    (trust / public.name).write_bytes(public.read_bytes())
    return keys.load_signer(folder, "alice", DEMO_PASSPHRASE), trust


def next_demo_batch(records: Path) -> str:
    """B-DEMO-001, or the next number not yet recorded under `records`."""
    n = 1
    while (records / f"B-DEMO-{n:03d}").exists():
        n += 1
    return f"B-DEMO-{n:03d}"


def _earlier(batch_id: str) -> str:
    n = int(batch_id.removeprefix("B-DEMO-")) - 1
    if n == 0:
        return ""
    return "; earlier demo records are kept: B-DEMO-001" + (f" to B-DEMO-{n:03d}" if n > 1 else "")


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("asyncua").setLevel(logging.ERROR)  # its session chatter is not news here
    started = time.monotonic()
    records = Path(os.environ.get("CELLAUTO_RECORDS", "records"))
    signer, trust = demo_signer(records)
    batch_id = next_demo_batch(records)
    print(f"batch {batch_id}: a new record {records / batch_id}{_earlier(batch_id)}")
    async with cellauto.Batch(
        batch_id,
        product="CAR-T (autologous, simulated)",
        operator="alice",
        recipe="CAR-T two-device demo",
        patient_id=PATIENT,
        sim=os.environ.get("CELLAUTO_SIM", "1") != "0",
        prompts=cellauto.AutoAnswer(
            user="alice (simulated)", answers={"sample": "sample taken", "connect": "connected"}
        ),
        records=records,
        signer=signer,
    ) as batch:
        prodigy = await batch.connect("prodigy+serial:///dev/ttyUSB0")
        cocoon = await batch.connect("cocoon+opcua://cocoon-01.cleanroom.local:4840")

        batch.register_material(
            SampleInfo(
                container_id="APH-0001",
                material="apheresis",
                patient_id=PATIENT,
                lot="APH-L-2026-117",
                volume=cellauto.Q(250, "mL"),
            )
        )
        await batch.transfer("APH-0001", prodigy, reason="starting material")

        # 1. Prodigy: selection, activation, transduction, formulation of the transduced fraction
        transduction = await prodigy.start_program(
            "TCT transduction", {"moi": 5}, supervisory_job_id=batch_id, user="alice"
        )
        selected = await transduction
        print(
            f"{prodigy.device_id}: {selected.program} {selected.outcome} at "
            f"{selected.stopped:%d %b %H:%M} ({time.monotonic() - started:.0f} s wall)"
        )
        for key in ("purity", "recovery", "transduction", "target_fraction_cells"):
            if key in selected.properties:
                print(f"  {key:<22} {selected.properties[key]}")

        batch.register_material(
            SampleInfo(
                container_id="TD-0001",
                material="transduced CD4/CD8 T cells",
                patient_id=PATIENT,
                lot="TD-L-2026-117",
                volume=cellauto.Q(100, "mL"),
            )
        )
        await batch.transfer("TD-0001", cocoon, reason="hand-over for expansion")

        # 2. Cocoon: expansion with a daily in-process sample, then harvest
        expansion = await cocoon.start_program(
            "CAR-T expansion",
            {"starting_cells": cellauto.Q(1e8, "{cells}")},
            supervisory_job_id=batch_id,
            user="alice",
        )
        while not expansion.done():
            await batch.sleep(24 * 3600)
            if (expansion.status.step_name or "").startswith("Expand"):
                await cocoon.command("take_sample", volume=cellauto.Q(1, "mL"))
        harvest = await expansion
        print(
            f"{cocoon.device_id}: {harvest.program} {harvest.outcome} at "
            f"{harvest.stopped:%d %b %H:%M} ({time.monotonic() - started:.0f} s wall)"
        )
        for key, value in list(harvest.properties.items())[:4]:
            print(f"  {key:<22} {value}")

        answer = await batch.prompt("Label and seal the final product bag", choices=("done",))
        print(f"operator: {answer}")
        batch.release("simulated batch, reviewed by the demo")
    print(f"finished in {time.monotonic() - started:.1f} s of wall time")
    report = cellauto.records.verify(batch.path, trust=trust)
    counts = ", ".join(f"{n} {table}" for table, n in sorted(report.rows.items()))
    print(f"record {batch.path}: {report.status}; {counts}")
    print(f"report {cellauto.records.report(batch.path)}")  # beside the record: open it


if __name__ == "__main__":
    asyncio.run(main())
