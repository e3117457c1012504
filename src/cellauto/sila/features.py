"""cellauto's SiLA 2 features as compact specifications; ``python -m cellauto.sila.features``
renders them into ``schemas/sila/`` (the files the server and clients read).

Structured values (a run's parameters and result, alarms, prompts, events, the device identity
and profile) travel as JSON strings of cellauto's own schema models: one String per record keeps
every field and version of the models without a second, hand-kept SiLA structure for each
(ADR 0018, SiLA 2 module).
"""

from __future__ import annotations

import sys

from cellauto.sila.fdl import (
    Command,
    Element,
    Feature,
    Property,
    basic,
    feature_dir,
    list_of,
    with_set,
    with_unit,
)
from cellauto.state import ALL_STATES

_JSON = basic("String")
_STATES = [str(s) for s in ALL_STATES]

PROGRAM_CONTROLLER = Feature(
    "ProgramController",
    "Runs the device's programs. RunProgram is observable: its execution info carries the "
    "run's progress and estimated remaining time, its intermediate responses the step being "
    "run, and its responses the run's outcome and cellauto Result (JSON).",
    commands=(
        Command(
            "RunProgram",
            "Start a program of the device profile and observe it to its end. A run that is "
            "stopped or aborted still ends with responses: Outcome says how it ended.",
            observable=True,
            parameters=(
                Element(
                    "Program",
                    "Name of a program of the device profile, or a whole cellauto "
                    "ProgramTemplate as JSON (a profile program adapted for this run).",
                    basic("String"),
                ),
                Element(
                    "Parameters",
                    'JSON object: parameter name -> {"value": number, "unit": UCUM code}, or a '
                    "plain string, number or boolean; {} for the defaults.",
                    _JSON,
                ),
            ),
            responses=(
                Element("Outcome", "complete, stopped or aborted.", basic("String")),
                Element("Result", "The run's cellauto Result as JSON.", _JSON),
            ),
            intermediate=(
                Element(
                    "StepNumber", "The 1-based number of the step being run.", basic("Integer")
                ),
                Element("StepName", "The name of the step being run.", basic("String")),
            ),
            errors=("ProgramRejected",),
        ),
    ),
    properties=(
        Property(
            "Programs", "The names of the profile's programs.", list_of(basic("String")), False
        ),
        Property("RunProgress", "Progress of the current run, 0..1.", with_unit("1"), True),
    ),
    errors={
        "ProgramRejected": "The program is unknown, a parameter is invalid, or the device "
        "cannot start a program in its current state."
    },
)

STATE_CONTROLLER = Feature(
    "DeviceStateController",
    "The device's state (the ISA-88 state model cellauto uses) and the commands that change it.",
    commands=tuple(
        Command(name, f"Send the {name.lower()} state command.", errors=("CommandNotAllowed",))
        for name in ("Hold", "Unhold", "Suspend", "Unsuspend", "Stop", "Abort", "Clear", "Reset")
    ),
    properties=(Property("State", "The device's current state.", with_set(_STATES)),),
    errors={"CommandNotAllowed": "The command is not allowed in the device's current state."},
)

ALARM_CONTROLLER = Feature(
    "AlarmController",
    "The device's alarms and their acknowledgement.",
    commands=(
        Command(
            "AcknowledgeAlarm",
            "Acknowledge an alarm on behalf of a user.",
            parameters=(
                Element("AlarmId", "The alarm's identifier.", basic("String")),
                Element("User", "Who acknowledges.", basic("String")),
            ),
            errors=("UnknownAlarm",),
        ),
    ),
    properties=(
        Property(
            "Alarms",
            "Every alarm the device holds (active or unacknowledged), each a cellauto Alarm as "
            "JSON.",
            list_of(_JSON),
        ),
    ),
    errors={"UnknownAlarm": "No alarm with this identifier, or it cannot be acknowledged."},
)

OPERATOR_PROMPTS = Feature(
    "OperatorPrompts",
    "Operator prompts a running program waits on, and their answers.",
    commands=(
        Command(
            "AnswerPrompt",
            "Answer an open prompt on behalf of a user.",
            parameters=(
                Element("PromptId", "The prompt's identifier.", basic("String")),
                Element("Answer", "The answer (one of the prompt's choices if it has any).", _JSON),
                Element("User", "Who answers.", basic("String")),
            ),
            errors=("PromptRejected",),
        ),
    ),
    properties=(
        Property(
            "OpenPrompts",
            'Open prompts, each JSON {"prompt_id", "message", "choices", "raised_at", '
            '"step_number", "step_name"} (the step of the run that waits on it).',
            list_of(_JSON),
        ),
    ),
    errors={"PromptRejected": "No such open prompt, or the answer is not one of its choices."},
)

AUDIT_TRAIL = Feature(
    "EventLog",
    "The device's numbered events (state changes, steps, alarms, prompts, commands): the "
    "newest sequence number as an observable property and read-back of everything after a "
    "number, so a client that lost its link misses nothing the server still holds.",
    commands=(
        Command(
            "EventsSince",
            "The events after sequence number Sequence, oldest first.",
            parameters=(Element("Sequence", "Return events after this number.", basic("Integer")),),
            responses=(
                Element("Events", "Each a cellauto Event as JSON.", list_of(_JSON)),
                Element(
                    "Oldest", "The oldest sequence number the server still holds.", basic("Integer")
                ),
            ),
        ),
    ),
    properties=(Property("LatestSequence", "The newest event's number.", basic("Integer")),),
)

SAMPLE_STREAM = Feature(
    "SampleStream",
    "Every value the device publishes, in publication order, with the device's timestamp and "
    "its per-channel publication counter (the per-channel properties carry only the newest "
    "value), so a client sees exactly which values it missed while its link was down.",
    properties=(
        Property(
            "Samples",
            "One value per publication: a cellauto Sample as JSON (channel, value, unit, "
            "timestamp, seq; seq counts the channel's publications, so a gap names missed "
            "values). A new subscription starts with the newest publication.",
            _JSON,
        ),
    ),
)

DEVICE_COMMANDS = Feature(
    "DeviceCommands",
    "The commands of the device profile beyond the state commands.",
    commands=(
        Command(
            "SendCommand",
            "Send profile command Name with its parameters.",
            parameters=(
                Element("Name", "A command of the device profile.", basic("String")),
                Element("Parameters", "JSON object, as RunProgram's Parameters.", _JSON),
            ),
            responses=(Element("Result", "The cellauto CommandResult as JSON.", _JSON),),
            errors=("CommandRejected",),
        ),
    ),
    errors={"CommandRejected": "The device rejected the command or its parameters."},
)

DEVICE_IDENTITY = Feature(
    "DeviceIdentity",
    "Who the device is and the data contract it is served under.",
    properties=(
        Property("Identity", "The cellauto DeviceInfo as JSON.", _JSON, False),
        Property("Profile", "The cellauto DeviceProfile as JSON.", _JSON, False),
    ),
)

CANCEL_CONTROLLER = Feature(
    "CancelController",
    "Cancel a running observable command (cellauto stops the program it runs).",
    originator="org.silastandard",
    category="core",
    commands=(
        Command(
            "CancelCommand",
            "Cancel the observable command with this execution UUID.",
            parameters=(
                Element("CommandExecutionUUID", "The execution to cancel.", basic("String")),
            ),
            errors=("InvalidCommandExecutionUUID", "OperationNotSupported"),
        ),
        Command("CancelAll", "Cancel every running observable command."),
    ),
    errors={
        "InvalidCommandExecutionUUID": "No running command has this execution UUID.",
        "OperationNotSupported": "This command cannot be cancelled.",
    },
)

PAUSE_CONTROLLER = Feature(
    "PauseController",
    "Pause and resume a running observable command (cellauto holds and unholds its program).",
    originator="org.silastandard",
    category="core",
    commands=tuple(
        Command(
            name,
            f"{name} the observable command with this execution UUID.",
            parameters=(Element("CommandExecutionUUID", "The execution.", basic("String")),),
            errors=("InvalidCommandExecutionUUID", "OperationNotSupported"),
        )
        for name in ("Pause", "Resume")
    ),
    properties=(
        Property("PausedCommands", "Execution UUIDs of paused commands.", list_of(basic("String"))),
    ),
    errors={
        "InvalidCommandExecutionUUID": "No running command has this execution UUID.",
        "OperationNotSupported": "This command cannot be paused or resumed now.",
    },
)

FEATURES = (
    PROGRAM_CONTROLLER,
    STATE_CONTROLLER,
    ALARM_CONTROLLER,
    OPERATOR_PROMPTS,
    AUDIT_TRAIL,
    DEVICE_COMMANDS,
    DEVICE_IDENTITY,
    CANCEL_CONTROLLER,
    PAUSE_CONTROLLER,
    SAMPLE_STREAM,
)
"""Every feature a cellauto SiLA server implements besides SiLAService, LockController and the
per-device DeviceChannels."""

SIMULATION_CONTROLLER = Feature(
    "SimulationController",
    "Whether the server runs in simulation or real mode. Served by simulators only, which are "
    "always in simulation mode: switching to real mode fails.",
    originator="org.silastandard",
    category="core",
    commands=(
        Command(
            "StartSimulationMode",
            "Switch to simulation mode (a simulator is in it already).",
            errors=("StartSimulationModeFailed",),
        ),
        Command(
            "StartRealMode",
            "Switch to real mode (a simulator has none).",
            errors=("StartRealModeFailed",),
        ),
    ),
    properties=(Property("SimulationMode", "True in simulation mode.", basic("Boolean"), False),),
    errors={
        "StartSimulationModeFailed": "The server cannot switch to simulation mode.",
        "StartRealModeFailed": "The server cannot switch to real mode.",
    },
)
"""Served besides `FEATURES` by a server in front of a simulated device."""


def render(check: bool = False) -> list[str]:
    """Write each feature's FDL file (or, with `check`, list the stale ones)."""
    stale = []
    for feature in (*FEATURES, SIMULATION_CONTROLLER):
        path = feature_dir() / f"{feature.identifier}.sila.xml"
        text = feature.xml()
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(path.name)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    return stale


if __name__ == "__main__":
    changed = render(check="--check" in sys.argv)
    print("\n".join(changed) or "up to date")
    sys.exit(1 if changed and "--check" in sys.argv else 0)
