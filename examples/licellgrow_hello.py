"""Connect to the simulated LiCellGrow over SiLA 2 (TLS), read the in-line metabolites, and run
a shortened T-cell expansion, answering its prompts. Everything about this device
is assumed: no public information about the PHCbi LiCellGrow exists."""

import asyncio

import cellauto
from cellauto.schema import EventKind, ProgramTemplate


def shortened(profile: cellauto.DeviceProfile) -> ProgramTemplate:
    """The expansion program with every timed step cut to 20 minutes."""
    template = profile.program("T-cell expansion")
    steps = [
        s if s.duration is None else s.model_copy(update={"duration": cellauto.Q(20, "min")})
        for s in template.steps
    ]
    data = template.model_dump(exclude={"content_hash"}) | {
        "name": "expansion demo",
        "steps": steps,
    }
    return ProgramTemplate.model_validate(data)


async def main() -> None:
    device = await cellauto.connect("licellgrow+sim://?speed=max&seed=1")
    try:
        print(f"{device.info.model} {device.info.serial_number}: {device.state}")
        for channel in ("metabolite_sensor.glucose", "metabolite_sensor.lactate", "culture.ph"):
            sample = await device.read(channel)
            print(f"{channel} = {sample.value:.2f} {sample.unit}")
        events = device.events()
        run = await device.start_program(shortened(device.profile), user="alice")
        async for event in events:
            if event.kind is EventKind.PROMPT:
                print(f"  prompt: {event.message}")
                await device.answer_prompt(str(event.data["prompt_id"]), "done", "alice")
            elif event.kind is EventKind.STEP_STARTED:
                print(f"  step {event.data['step_number']}: {event.message}")
            elif event.kind is EventKind.PROGRAM_FINISHED:
                break
        result = await run
        print(f"{result.outcome}: {result.properties['final_cells'].value:.3g} cells")
    finally:
        await device.close()


if __name__ == "__main__":
    asyncio.run(main())
