"""Connect to a simulated Lonza Cocoon, read a channel, and run a short protocol to completion,
answering its operator prompts. The simulator speaks cellauto's own Cocoon OPC UA profile
(the real interface is not public)."""

import asyncio

import cellauto
from cellauto.schema import EventKind, ProgramTemplate


def short_car_t(profile: cellauto.DeviceProfile) -> ProgramTemplate:
    """The profile's CAR-T protocol with every timed step cut to 10 minutes."""
    template = profile.program("CAR-T")
    steps = [
        s if s.duration is None else s.model_copy(update={"duration": cellauto.Q(10, "min")})
        for s in template.steps
    ]
    data = template.model_dump(exclude={"content_hash"}) | {"name": "CAR-T demo", "steps": steps}
    return ProgramTemplate.model_validate(data)


async def main() -> None:
    cocoon = await cellauto.connect("cocoon+sim://?speed=max&seed=1")
    try:
        print(f"{cocoon.info.model} {cocoon.info.serial_number}: {cocoon.state}")
        temperature = await cocoon.read("chamber.temperature")
        print(f"chamber.temperature = {temperature.value:.2f} {temperature.unit}")

        events = cocoon.events()
        run = await cocoon.start_program(short_car_t(cocoon.profile), user="alice")
        async for event in events:
            if event.kind is EventKind.PROMPT:
                print(f"  prompt: {event.message}")
                await cocoon.answer_prompt(str(event.data["prompt_id"]), "done", "alice")
            elif event.kind is EventKind.STEP_STARTED:
                print(f"  step {event.data['step_number']}: {event.message}")
            elif event.kind is EventKind.PROGRAM_FINISHED:
                break
        result = await run
        cells = result.properties["harvested_cells"]
        print(f"{result.outcome} after {result.total_runtime}; harvested {cells}")
    finally:
        await cocoon.close()


if __name__ == "__main__":
    asyncio.run(main())
