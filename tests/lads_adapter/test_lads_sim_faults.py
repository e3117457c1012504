"""A LADS simulator refuses, before it serves, the link faults it cannot simulate (asyncua owns
the OPC UA framing), instead of ignoring them."""

from __future__ import annotations

import pytest

from cellauto.errors import SimOptionError
from cellauto.sim import start_simulator

pytestmark = pytest.mark.asyncio


@pytest.mark.parametrize("fault", ["stall@1h:10m", "corrupt@2h=3", "drop_bytes@2h=20"])
async def test_a_fault_the_wire_cannot_show_is_refused_at_start(fault: str) -> None:
    kind = fault.split("@")[0]
    with pytest.raises(SimOptionError, match=f"{kind} cannot be simulated on a LADS server"):
        await start_simulator("cellqualia", faults=f"glove_breach@1h,{fault}")
