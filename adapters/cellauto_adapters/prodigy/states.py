"""Vendor states of the Prodigy protocol and their cellauto states (protocol section 5)."""

from __future__ import annotations

from cellauto.state import (
    ABORTED,
    ABORTING,
    CLEARING,
    COMPLETE,
    COMPLETING,
    EXECUTE,
    HELD,
    HOLDING,
    IDLE,
    RESETTING,
    STARTING,
    STOPPED,
    STOPPING,
    SUSPENDED,
    SUSPENDING,
    UNHOLDING,
    UNSUSPENDING,
    State,
    StateCommand,
)

VENDOR_STATES: dict[str, State] = {
    "READY": STOPPED,
    "IDLE": IDLE,
    "PREPARING": STARTING,
    "PROCESSING": EXECUTE,
    "FINISHING": COMPLETING,
    "FINISHED": COMPLETE,
    "RESETTING": RESETTING,
    "PAUSING": HOLDING,
    "PAUSED": HELD,
    "RESUMING": UNHOLDING,
    "INTERRUPTING": SUSPENDING,
    "INTERRUPTED": SUSPENDED,
    "CONTINUING": UNSUSPENDING,
    "STOPPING": STOPPING,
    "ABORTING": ABORTING,
    "ABORTED": ABORTED,
    "CLEARING": CLEARING,
}
"""Vendor state name -> cellauto state."""

CMD_NAMES: dict[StateCommand, str] = {
    command: command.value for command in StateCommand if command is not StateCommand.START
}
"""State commands as `CMD c=<name>` spells them (start is the `START` request)."""


def to_state(vendor: str) -> State | None:
    """The cellauto state of a vendor state name; None if unknown."""
    return VENDOR_STATES.get(vendor)
