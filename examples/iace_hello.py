"""Connect to a simulated ACC-200 (Hitachi's closed automated culture equipment, as cellauto's
own Modbus TCP register map models it; the vendor's interface is not public), read a channel,
and run a short cell-sheet program on three vessels, answering its operator prompts. The final
microscope observation writes one image per vessel to the simulator's image share; they come
back as the run's result files with their SHA-256."""

import asyncio

import cellauto
from cellauto.schema import EventKind, ProgramTemplate


def short_sheet(profile: cellauto.DeviceProfile) -> ProgramTemplate:
    """The profile's cell-sheet program with every timed step cut to one hour."""
    template = profile.program("oral mucosal cell sheet")
    steps = [
        s if s.duration is None else s.model_copy(update={"duration": cellauto.Q(1, "h")})
        for s in template.steps
    ]
    data = template.model_dump(exclude={"content_hash"}) | {"name": "sheet demo", "steps": steps}
    return ProgramTemplate.model_validate(data)


async def main() -> None:
    iace = await cellauto.connect("acc200+sim://?speed=max&seed=1")
    try:
        print(f"{iace.info.model} {iace.info.serial_number}: {iace.state}")
        temperature = await iace.read("incubator.temperature")
        print(f"incubator.temperature = {temperature.value:.2f} {temperature.unit}")

        events = iace.events()
        run = await iace.start_program(short_sheet(iace.profile), {"vessel_count": 3}, user="alice")
        async for event in events:
            if event.kind is EventKind.PROMPT:
                print(f"  prompt: {event.message}")
                await iace.answer_prompt(str(event.data["prompt_id"]), "done", "alice")
            elif event.kind is EventKind.STEP_STARTED:
                print(f"  step {event.data['step_number']}: {event.message}")
            elif event.kind is EventKind.PROGRAM_FINISHED:
                break
        result = await run
        print(f"{result.outcome} after {result.total_runtime}; {len(result.files)} images:")
        for image in result.files:
            print(f"  {image.name}  sha256 {image.sha256[:16]}...")
    finally:
        await iace.close()


if __name__ == "__main__":
    asyncio.run(main())
