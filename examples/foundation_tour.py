"""A tour of the foundation: every shipped device profile, its programs walked through the
common state machine, and the standards' view of each state.

Run with `make demo` until the simulated multi-device batch lands. Everything printed is computed
from the shipped profiles and the state machine; nothing is canned.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import cellauto
from cellauto.schema import Event, EventKind
from cellauto.state import StateMachine, Transition, state_mappings


def run_program(device: str, program: cellauto.ProgramTemplate, start: datetime) -> list[Event]:
    """Walk one program through the state machine on a virtual clock, one event per transition."""
    machine = StateMachine(device)
    clock = start
    events: list[Event] = []

    def record(transition: Transition | None, message: str = "") -> None:
        if transition is None:
            return
        events.append(
            Event(
                device_id=device,
                time=clock,
                seq=len(events),
                kind=EventKind.STATE_CHANGED,
                from_state=str(transition.from_state),
                to_state=str(transition.to_state),
                cause=str(transition.command or transition.cause),
                message=message,
            )
        )

    record(machine.command("start"))
    record(machine.state_complete())
    for number, step in enumerate(program.steps, 1):
        events.append(
            Event(
                device_id=device,
                time=clock,
                seq=len(events),
                kind=EventKind.STEP_STARTED,
                message=f"step {number}: {step.name}",
                data={"unit_operation": step.unit_operation},
            )
        )
        clock += timedelta(seconds=step.duration_seconds or 0)
    record(machine.state_complete(), "last step done")
    record(machine.state_complete())
    return events


def main() -> None:
    print(f"cellauto {cellauto.__version__}: schema {cellauto.SCHEMA_VERSION}\n")
    print(f"{'device':<11} {'public':>6} {'assumed':>7}  units  channels  programs  alarms")
    profiles = [cellauto.load_profile(name) for name in cellauto.available_profiles()]
    for profile in profiles:
        counts = profile.provenance_counts()
        print(
            f"{profile.device:<11} {counts['public']:>6} {counts['assumed']:>7}  "
            f"{len(profile.functional_units):>5}  {len(profile.channels()):>8}  "
            f"{len(profile.programs):>8}  {len(profile.alarms):>6}"
        )

    start = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    mappings = state_mappings()
    for profile in profiles:
        for program in profile.programs[:1]:
            events = run_program(f"{profile.device}-1", program, start)
            span = events[-1].time - events[0].time
            print(
                f"\n{profile.device} / {program.name} {program.version} "
                f"({program.content_hash[:12]}):"
            )
            print(
                f"  {len(program.steps)} steps, {span.total_seconds() / 86400:.2f} days simulated"
            )
            for event in events:
                if event.kind is EventKind.STATE_CHANGED and event.to_state:
                    row = mappings[cellauto.State.parse(event.to_state)]
                    print(
                        f"  {event.time:%Y-%m-%d %H:%M}  {event.to_state:<20} "
                        f"PackML {row.packml:>2}  ISA-88 {row.isa88:<9} MTP {row.mtp}"
                    )

    temperature = cellauto.Q(37, "Cel")
    glucose = cellauto.Q(90, "mg/dL").to("mmol/L", substance="glucose")
    print(
        f"\nunits: {temperature} = {temperature.to('K')}; "
        f"90 mg/dL glucose = {glucose.value:.2f} mmol/L"
    )


if __name__ == "__main__":
    main()
