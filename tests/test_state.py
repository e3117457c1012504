"""The LADS/PackML state machine: every legal move, every illegal command, every mapping row."""

from __future__ import annotations

import itertools

import pytest

from cellauto.errors import InvalidTransition
from cellauto.state import (
    ALL_STATES,
    ALREADY_THERE,
    COMPLETIONS,
    TRANSITIONS,
    State,
    StateCommand,
    StateMachine,
    command_mappings,
    state_mappings,
)

S = State.parse
C = StateCommand

# Written out by hand from DESIGN.md and the PackML/LADS semantics, independently of state.py.
EXPECTED_COMMANDS = {
    ("Stopped", "start"): "Running/Starting",
    ("Stopped", "reset"): "Running/Resetting",
    ("Stopped", "abort"): "Aborting",
    ("Running/Idle", "start"): "Running/Starting",
    ("Running/Complete", "reset"): "Running/Resetting",
    ("Running/Execute", "hold"): "Running/Holding",
    ("Running/Held", "unhold"): "Running/Unholding",
    ("Running/Execute", "suspend"): "Running/Suspending",
    ("Running/Suspended", "unsuspend"): "Running/Unsuspending",
    ("Aborted", "clear"): "Clearing",
    ("Stopping", "abort"): "Aborting",
    ("Clearing", "abort"): "Aborting",
}
RUNNING = [
    "Idle",
    "Starting",
    "Execute",
    "Completing",
    "Complete",
    "Resetting",
    "Holding",
    "Held",
    "Unholding",
    "Suspending",
    "Suspended",
    "Unsuspending",
]
for inner in RUNNING:
    EXPECTED_COMMANDS[(f"Running/{inner}", "stop")] = "Stopping"
    EXPECTED_COMMANDS[(f"Running/{inner}", "abort")] = "Aborting"

EXPECTED_COMPLETIONS = {
    "Running/Starting": "Running/Execute",
    "Running/Execute": "Running/Completing",
    "Running/Completing": "Running/Complete",
    "Running/Resetting": "Running/Idle",
    "Running/Holding": "Running/Held",
    "Running/Unholding": "Running/Execute",
    "Running/Suspending": "Running/Suspended",
    "Running/Unsuspending": "Running/Execute",
    "Stopping": "Stopped",
    "Aborting": "Aborted",
    "Clearing": "Stopped",
}


def test_transition_table_is_exactly_the_expected_one() -> None:
    actual = {(str(s), str(c)): str(t) for (s, c), t in TRANSITIONS.items()}
    assert actual == EXPECTED_COMMANDS


@pytest.mark.parametrize(("state", "command"), sorted(EXPECTED_COMMANDS))
def test_each_legal_command(state: str, command: str) -> None:
    machine = StateMachine("cocoon-1", S(state))
    transition = machine.command(command)
    assert transition is not None
    assert (str(transition.from_state), str(transition.to_state)) == (
        state,
        EXPECTED_COMMANDS[(state, command)],
    )
    assert transition.cause == "command"
    assert transition.command == C(command)
    assert str(machine.state) == EXPECTED_COMMANDS[(state, command)]


@pytest.mark.parametrize(("state", "target"), sorted(EXPECTED_COMPLETIONS.items()))
def test_each_state_complete(state: str, target: str) -> None:
    machine = StateMachine("prodigy-1", S(state))
    transition = machine.state_complete()
    assert str(transition.to_state) == target
    assert transition.cause == "state_complete"


def test_completion_table_is_exactly_the_expected_one() -> None:
    assert {str(s): str(t) for s, t in COMPLETIONS.items()} == EXPECTED_COMPLETIONS


ILLEGAL = [
    (state, command)
    for state, command in itertools.product(ALL_STATES, C)
    if (state, command) not in TRANSITIONS and state not in ALREADY_THERE[command]
]


@pytest.mark.parametrize(("state", "command"), ILLEGAL, ids=lambda x: str(x))
def test_each_illegal_command_names_device_state_and_command(
    state: State, command: StateCommand
) -> None:
    machine = StateMachine("prodigy-7", state)
    with pytest.raises(InvalidTransition) as info:
        machine.command(command)
    message = str(info.value)
    assert "prodigy-7" in message
    assert str(state) in message
    assert str(command) in message
    assert info.value.state == str(state)
    assert machine.state == state  # nothing moved
    with pytest.raises(InvalidTransition):
        machine.check(command)


def test_illegal_commands_exist_for_every_state_but_none_is_silently_accepted() -> None:
    assert len(ILLEGAL) > 60
    assert ("Running/Held", "hold") not in {(str(s), str(c)) for s, c in ILLEGAL}


@pytest.mark.parametrize(
    ("state", "command"),
    [(s, c) for c, states in ALREADY_THERE.items() for s in sorted(states, key=str)],
    ids=lambda x: str(x),
)
def test_commands_whose_goal_is_reached_are_no_ops(state: State, command: StateCommand) -> None:
    machine = StateMachine("cocoon-1", state)
    if (state, command) in TRANSITIONS:
        pytest.fail(f"{state} {command} is both a transition and a no-op")
    assert machine.command(command) is None
    assert machine.state == state


def test_state_complete_in_a_resting_state_is_invalid() -> None:
    machine = StateMachine("cocoon-1", S("Running/Held"))
    with pytest.raises(InvalidTransition, match="state_complete"):
        machine.state_complete()


def test_every_state_is_reachable_from_stopped() -> None:
    seen = {S("Stopped")}
    frontier = [S("Stopped")]
    while frontier:
        state = frontier.pop()
        nexts = [t for (s, _), t in TRANSITIONS.items() if s == state]
        nexts += [COMPLETIONS[state]] if state in COMPLETIONS else []
        for nxt in nexts:
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(ALL_STATES)


def test_full_run_lifecycle() -> None:
    machine = StateMachine("cocoon-1")
    path = [machine.command("start"), machine.state_complete()]
    path += [machine.command("hold"), machine.state_complete()]
    path += [machine.command("unhold"), machine.state_complete()]
    path += [machine.state_complete(), machine.state_complete()]
    path += [machine.command("reset"), machine.state_complete()]
    assert [str(t.to_state) for t in path if t] == [
        "Running/Starting",
        "Running/Execute",
        "Running/Holding",
        "Running/Held",
        "Running/Unholding",
        "Running/Execute",
        "Running/Completing",
        "Running/Complete",
        "Running/Resetting",
        "Running/Idle",
    ]


def test_observe_adopts_what_the_device_reports() -> None:
    machine = StateMachine("cocoon-1")
    transition = machine.observe(S("Running/Held"))
    assert transition is not None
    assert transition.cause == "reported"
    assert machine.observe(S("Running/Held")) is None


def test_state_parse_and_str_round_trip() -> None:
    for state in ALL_STATES:
        assert State.parse(str(state)) == state
    with pytest.raises(ValueError, match="not a state"):
        State.parse("Running/Executing")
    with pytest.raises(ValueError, match="invalid state"):
        State(S("Stopped").functional, S("Running/Idle").running)


def test_acting_states() -> None:
    acting = {str(s) for s in ALL_STATES if s.is_acting}
    assert acting == set(EXPECTED_COMPLETIONS) - {"Running/Execute"}


# Row by row from the mapping tables published with OPC 30500-1 (LADS), ISA-TR88.00.02 (PackML),
# VDI/VDE/NAMUR 2658 (MTP) and SiLA 2 Part B (command execution status).
EXPECTED_STATE_ROWS = {
    "Stopped": (2, "Stopped", 4, "finishedWithError"),
    "Stopping": (7, "Stopping", 128, "running"),
    "Aborting": (8, "Aborting", 256, "running"),
    "Aborted": (9, "Aborted", 512, "finishedWithError"),
    "Clearing": (1, "Aborted", 32768, None),
    "Running/Idle": (4, "Idle", 16, "waiting"),
    "Running/Starting": (3, "Running", 8, "running"),
    "Running/Execute": (6, "Running", 64, "running"),
    "Running/Completing": (16, "Running", 65536, "running"),
    "Running/Complete": (17, "Complete", 131072, "finishedSuccessfully"),
    "Running/Resetting": (15, "Idle", 32768, None),
    "Running/Holding": (10, "Holding", 1024, "running"),
    "Running/Held": (11, "Held", 2048, "running"),
    "Running/Unholding": (12, "Restarting", 4096, "running"),
    "Running/Suspending": (13, "Pausing", 8192, "running"),
    "Running/Suspended": (5, "Paused", 32, "running"),
    "Running/Unsuspending": (14, "Running", 16384, "running"),
}


@pytest.mark.parametrize("state", sorted(EXPECTED_STATE_ROWS))
def test_state_mapping_row(state: str) -> None:
    row = state_mappings()[S(state)]
    assert (row.packml, row.isa88, row.mtp, row.sila) == EXPECTED_STATE_ROWS[state]
    running = S(state).running
    assert row.packml_name == (running or S(state).functional)


def test_state_mappings_cover_every_state_once() -> None:
    assert set(state_mappings()) == set(ALL_STATES)
    assert len({row.packml for row in state_mappings().values()}) == len(ALL_STATES)


EXPECTED_COMMAND_ROWS = {
    "reset": (1, "Reset", 2),
    "start": (2, "Start", 4),
    "stop": (3, "Stop", 8),
    "hold": (4, "Hold", 16),
    "unhold": (5, "Restart", 32),
    "suspend": (6, "Pause", 64),
    "unsuspend": (7, "Resume", 128),
    "abort": (8, "Abort", 256),
    "clear": (9, "Reset", 2),
}


@pytest.mark.parametrize("command", sorted(EXPECTED_COMMAND_ROWS))
def test_command_mapping_row(command: str) -> None:
    row = command_mappings()[C(command)]
    assert (row.packml, row.isa88, row.mtp) == EXPECTED_COMMAND_ROWS[command]


def test_command_mappings_cover_every_command() -> None:
    assert set(command_mappings()) == set(C)
