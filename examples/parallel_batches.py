"""Several single-patient Cocoon batches at once, each with its own record.

Each patient gets a Cocoon and a batch of their own; the batches run concurrently in one process
(in simulation each on its own virtual clock). A material label for the wrong patient is refused
by the chain-of-identity check and the refusal stays in that batch's audit trail.

    python examples/parallel_batches.py [N] [HOURS]   # N patients (default 2); expansion
                                                      # HOURS (default: the profile's 120)

A shorter expansion is a changed program: the profile's template with one step's duration
changed is a new template (its own content hash, loaded onto the device before it starts).
"""

from __future__ import annotations

import asyncio
import logging
import sys

import cellauto
from cellauto.schema import ProgramTemplate, SampleInfo

EXPANSION = "Expand with feeds"


def with_expansion(template: ProgramTemplate, hours: float) -> ProgramTemplate:
    """`template` with its expansion step lasting `hours` (a new template, hash and all)."""
    steps = [
        step.model_copy(update={"duration": cellauto.Q(hours, "h")})
        if step.name == EXPANSION
        else step
        for step in template.steps
    ]
    data = template.model_dump(exclude={"content_hash"}) | {
        "name": f"{template.name} {hours:g} h",
        "steps": [step.model_dump() for step in steps],
    }
    return ProgramTemplate.model_validate(data)


async def one_patient(n: int, hours: float | None) -> cellauto.Batch:
    """Expand one patient's transduced T cells on their own Cocoon."""
    patient = f"P-{n:04d}"
    async with cellauto.Batch(
        f"B-PAR-{n:03d}",
        product="CAR-T (autologous, simulated)",
        operator="bob",
        patient_id=patient,
        sim=True,
        seed=n,
    ) as batch:
        cocoon = await batch.connect(f"cocoon+opcua://cocoon-{n:02d}.cleanroom.local:4840")
        batch.register_material(SampleInfo(container_id=f"TD-{n:04d}", patient_id=patient))
        try:  # somebody grabs the neighbour's bag: refused before anything moves
            batch.register_material(SampleInfo(container_id="TD-WRONG", patient_id="P-9999"))
        except cellauto.IdentityMismatch as refused:
            print(f"{batch.batch_id}: refused: {refused}")
        await batch.transfer(f"TD-{n:04d}", cocoon)
        program = cocoon.profile.program("CAR-T expansion")
        if hours is not None:
            program = with_expansion(program, hours)
        run = await cocoon.start_program(
            program, {"starting_cells": cellauto.Q(5e7 * n, "{cells}")}
        )
        result = await run
        print(
            f"{batch.batch_id}: {result.outcome}, {program.name}, "
            f"{result.properties.get('harvested_cells', 'no count')} at {batch.now():%d %b %H:%M}"
        )
        batch.release("parallel example")
    return batch


async def main(count: int, hours: float | None) -> None:
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    batches = await asyncio.gather(*(one_patient(n, hours) for n in range(1, count + 1)))
    for batch in batches:
        print(f"{batch.batch_id}: {cellauto.records.verify(batch.path).status} ({batch.path})")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    asyncio.run(main(count, float(sys.argv[2]) if len(sys.argv) > 2 else None))
