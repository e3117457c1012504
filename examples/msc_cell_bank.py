"""An MSC cell-bank batch on a simulated SINFONIA CellQualia (over OPC UA LADS): the isolator is
decontaminated, the MSCs are seeded and expanded passage by passage, each expansion ending when the
culture reaches the passage confluency, then harvested and banked. The culture images and the
cell-bank summary come back as LADS result files and are stored in the batch record with their
SHA-256 in the audit trail. Every number of the device is assumed (docs/devices/cellqualia.md).

    python examples/msc_cell_bank.py                # two passages at 80 %: about two weeks
    python examples/msc_cell_bank.py --passages 1 --confluency 50 --seeding 10000

At full speed the simulator publishes a value of each of 17 channels every virtual minute: the
default run is some hundred thousand values, the short one a tenth of that."""

import argparse
import asyncio
import json
import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import cellauto
from cellauto.schema import EventKind, SampleInfo


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=2, help="passages before harvest (0-2)")
    parser.add_argument("--confluency", type=float, default=80, help="passage confluency (%%)")
    parser.add_argument("--seeding", type=float, default=3000, help="seeding density (cells/cm2)")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (a run to reproduce)")
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    logging.getLogger("asyncua").setLevel(logging.ERROR)  # its server chatter is not news here
    records = Path(os.environ.get("CELLAUTO_RECORDS") or tempfile.mkdtemp(prefix="msc-bank-"))
    async with cellauto.Batch(
        "B-MSC-001",
        product="MSC master cell bank (simulated)",
        operator="alice",
        donor_id="DONOR-0117",
        sim=True,
        prompts=cellauto.AutoAnswer(user="alice (simulated)"),
        records=records,
    ) as batch:
        cq = await batch.connect(f"cellqualia+sim://?speed=max&seed={args.seed}", device_id="cq-1")
        batch.register_material(
            SampleInfo(
                container_id="BM-0001",
                material="bone-marrow MSCs, passage 0",
                donor_id="DONOR-0117",
                lot="BM-L-2026-031",
            )
        )
        await batch.transfer("BM-0001", cq, reason="seed the expansion")
        events = cq.events()
        run = await cq.start_program(
            "MSC expansion",
            {
                "passages": args.passages,
                "passage_confluency": cellauto.Q(args.confluency, "%"),
                "seeding_density": cellauto.Q(args.seeding, "{cells}/cm2"),
            },
            supervisory_job_id="B-MSC-001",
            user="alice",
        )

        async def narrate() -> None:
            async for event in events:
                if event.kind in (EventKind.STEP_STARTED, EventKind.ALARM_RAISED):
                    print(f"  {event.time:%d %b %H:%M}  {event.kind}: {event.message}")

        narrating = asyncio.create_task(narrate())
        bank = await run
        narrating.cancel()
        hours = bank.total_runtime.total_seconds() / 3600
        print(f"{cq.device_id}: {bank.program} {bank.outcome} after {hours:.0f} h")
        for key, value in bank.properties.items():
            print(f"  {key:<20} {value}")
        summary = next(f for f in bank.files if f.name == "cell-bank-summary.json")
        banked = json.loads(
            await asyncio.to_thread(Path(url2pathname(urlparse(summary.path).path)).read_text)
        )
        print(
            f"cell bank: {banked['cells_harvested']:.2e} cells after {banked['passages']} "
            f"passage(s), morphology {banked['morphology_score']}"
            + (" (flagged)" if banked["morphology_flagged"] else "")
        )
        batch.release("simulated batch, reviewed by the example")
    report = cellauto.records.verify(batch.path)
    stored = sorted(p.name for p in (batch.path / "files").iterdir())
    print(f"record {batch.path.name}: {report.status}; {len(stored)} result files stored:")
    for name in stored:
        print(f"  {name}")


if __name__ == "__main__":
    asyncio.run(main(arguments()))
