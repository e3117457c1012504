"""Connect to a simulated LabDroid Maholo (cellauto's own HTTP API), read a channel, run the
40-day iPSC-to-RPE protocol to the end at max speed (answering the labware handover and any
intervention after a failed robot command), and print the pigmentation score and the robot log.
Runs in a few seconds."""

import asyncio

import cellauto
from cellauto.schema import EventKind


async def main() -> None:
    maholo = await cellauto.connect("maholo+sim://?speed=max&seed=1")
    try:
        print(maholo.info.model, "is", maholo.state)
        temperature = await maholo.read("incubator.temperature")
        print(f"incubator.temperature = {temperature.value:.2f} {temperature.unit}")
        events = maholo.events()
        run = await maholo.start_program(
            "iPSC-RPE differentiation", {"trypsin_period": cellauto.Q(20, "min")}
        )

        async def operator() -> None:
            async for event in events:
                if event.kind == EventKind.PROMPT:
                    print("prompt:", event.message[:90])
                    await maholo.answer_prompt(str(event.data["prompt_id"]), "done", "alice")

        answering = asyncio.create_task(operator())
        result = await run
        answering.cancel()
        print("run", result.outcome, "after", result.total_runtime)
        for name, value in sorted(result.properties.items()):
            print(f"  {name:22} {value}")
        print(f"  images: {', '.join(f.name for f in result.files)}")
        log = await maholo.robot_log()  # type: ignore[attr-defined]
        failed = [entry for entry in log if entry["errors"]]
        print(f"robot log: {len(log)} robot jobs, {len(failed)} with a failed command")
    finally:
        await maholo.close()


if __name__ == "__main__":
    asyncio.run(main())
