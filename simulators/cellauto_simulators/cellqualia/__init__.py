"""Simulated SINFONIA CellQualia served as an OPC UA LADS server (``cellqualia+sim://`` or
``cellauto sim cellqualia``), on the LADS simulator family (`cellauto.sim.families.lads`).

Options are the common simulator set (``speed``, ``seed``, ``port``, ``faults``; profile alarm
codes as fault kinds: ``glove_breach@2h``; ``disconnect``). ``stall``, ``corrupt`` and
``drop_bytes`` are refused at start: asyncua owns the OPC UA framing.
"""

from __future__ import annotations

from typing import ClassVar

from cellauto.sim.families.lads import LadsSimHandle

from .device import SimulatedCellQualia

__all__ = ["CellQualiaSimulator", "SimulatedCellQualia", "start_simulator"]


class CellQualiaSimulator(LadsSimHandle):
    """A running CellQualia simulator (`device` is the model, `gateway` its LADS server)."""

    kind: ClassVar[str] = "cellqualia"
    device_class = SimulatedCellQualia
    process_alarms: ClassVar[dict[str, str]] = {
        "temperature_excursion": "temperature_out_of_range",
        "leak": "isolator_pressure_loss",
    }


start_simulator = CellQualiaSimulator.launch
