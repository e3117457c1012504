"""Connect to a simulated CliniMACS Prodigy, read a channel, run TCT to the end (answering the
operator prompts) and print the result. Runs in a few seconds at speed=max."""

import asyncio

import cellauto
from cellauto.schema import EventKind


async def main() -> None:
    prodigy = await cellauto.connect("prodigy+sim://?speed=max&seed=1")
    try:
        print(prodigy.info.model, "is", prodigy.state)
        temperature = await prodigy.read("chamber.temperature")
        print(f"chamber.temperature = {temperature.value:.2f} {temperature.unit}")
        events = prodigy.events()
        run = await prodigy.start_program("TCT", {"moi": cellauto.Q(5, "1")})

        async def operator() -> None:
            async for event in events:
                if event.kind == EventKind.PROMPT:
                    print("prompt:", event.message)
                    await prodigy.answer_prompt(str(event.data["prompt_id"]), "done", "alice")

        answering = asyncio.create_task(operator())
        result = await run
        answering.cancel()
        print("run", result.outcome, "after", result.total_runtime)
        for name, value in sorted(result.properties.items()):
            print(f"  {name:26} {value}")
    finally:
        await prodigy.close()


if __name__ == "__main__":
    asyncio.run(main())
