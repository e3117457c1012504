"""Connect to a simulated SINFONIA CellQualia over OPC UA LADS, read the isolator, run its
decontamination cycle to the end (answering the operator prompt) and print the result. The same
server is usable without CellQualia's profile: ``lads+opcua://`` builds one by browsing."""

import asyncio

import cellauto
from cellauto.schema import EventKind


async def main() -> None:
    cq = await cellauto.connect("cellqualia+sim://?speed=max&seed=1")
    try:
        print(cq.info.model, "is", cq.state)
        for channel in ("isolator.differential_pressure", "isolator.decontamination_state"):
            sample = await cq.read(channel)
            print(f"{channel} = {sample.value} {sample.unit or ''}")
        events = cq.events()
        run = await cq.start_program("Isolator decontamination")

        async def operator() -> None:
            async for event in events:
                if event.kind == EventKind.PROMPT:
                    print("prompt:", event.message)
                    await cq.answer_prompt(str(event.data["prompt_id"]), "done", "alice")
                elif event.kind == EventKind.STEP_STARTED:
                    print("step:", event.message)

        answering = asyncio.create_task(operator())
        result = await run
        answering.cancel()
        print("run", result.outcome, "after", result.total_runtime)
        state = await cq.read("isolator.decontamination_state")
        h2o2 = await cq.read("isolator.h2o2_concentration")
        print(f"isolator: {state.value}, H2O2 {h2o2.value:.1f} {h2o2.unit}")
    finally:
        await cq.close()


if __name__ == "__main__":
    asyncio.run(main())
