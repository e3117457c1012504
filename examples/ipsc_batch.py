"""An iPSC batch on two simulated ACC-200 units: the first expands iPSCs in four closed vessels
(about ten days), the harvest moves to the second with its chain of identity checked, and the
second cultures cell sheets from it (standing in for a differentiated sheet product: public
sources report automated iPSC-RPE sheet culture on such equipment; the step list is the
profile's sheet program). Every microscope image of both runs is stored in the batch record,
its SHA-256 in the audit trail. The register map both units speak is cellauto's own design."""

import asyncio
import os
import tempfile
from pathlib import Path

import cellauto
from cellauto.schema import SampleInfo

# a published process image every six virtual hours, polled twice as often: two weeks take seconds
ACC200 = "acc200+sim://?scan=21600&poll=10800"


async def main() -> None:
    records = Path(os.environ.get("CELLAUTO_RECORDS") or tempfile.mkdtemp(prefix="ipsc-"))
    async with cellauto.Batch(
        "B-IPSC-001",
        product="iPSC-derived cell sheets (simulated)",
        operator="alice",
        donor_id="DONOR-0042",
        sim=True,
        prompts=cellauto.AutoAnswer(user="alice (simulated)"),
        records=records,
    ) as batch:
        expander = await batch.connect(ACC200, device_id="iace-1")
        sheets = await batch.connect(ACC200, device_id="iace-2")
        batch.register_material(
            SampleInfo(
                container_id="IPS-0001",
                material="iPSC master cell bank vial",
                donor_id="DONOR-0042",
                lot="MCB-L-07",
            )
        )
        await batch.transfer("IPS-0001", expander, reason="thaw and seed")
        expansion = await expander.start_program(
            "iPSC expansion",
            {"vessel_count": 4, "imaging_interval": cellauto.Q(48, "h")},
            user="alice",
        )
        expanded = await expansion
        cells = (await expander.read("vessels.total_cells")).value
        print(
            f"iace-1: {expanded.program} {expanded.outcome} after {expanded.total_runtime}, "
            f"{cells:.2e} cells, {len(expanded.files)} images"
        )

        batch.register_material(
            SampleInfo(
                container_id="IPS-0002",
                material="expanded iPSCs",
                donor_id="DONOR-0042",
                lot="EXP-L-07",
            )
        )
        await batch.transfer("IPS-0002", sheets, reason="seed the sheet culture")
        culture = await sheets.start_program(
            "oral mucosal cell sheet", {"vessel_count": 4, "imaging_interval": cellauto.Q(48, "h")}
        )
        made = await culture
        cover = [(await sheets.read(f"vessel{i}.confluency")).value for i in range(1, 5)]
        print(
            f"iace-2: {made.program} {made.outcome} after {made.total_runtime}, "
            f"confluency {min(cover):.0f}-{max(cover):.0f} %, {len(made.files)} images"
        )
        batch.release("simulated batch, reviewed by the example")
    report = cellauto.records.verify(batch.path)
    stored = len(list((batch.path / "files").iterdir()))
    print(f"record {batch.path.name}: {report.status}; {stored} images stored with their SHA-256")


if __name__ == "__main__":
    asyncio.run(main())
