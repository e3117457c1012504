"""Benchmark: the process model alone, advancing simulated time (target >= 1e6 sim s / wall s).

A Bioreactor (culture + temperature/CO2/O2 loops) is seeded and advanced through a 30-day run in
increments of a device's sample period, with the culture integrated in sub-steps of at most
`max_step`. Prints simulated seconds per wall second for each combination.

    .venv/bin/python benchmarks/sim_process_model.py
"""

from __future__ import annotations

import time
from dataclasses import replace

from cellauto.sim import Bioreactor, BioreactorParams, CultureParams

TARGET = 1e6
DAYS = 30


def rate(increment: float, max_step: float, *, read: bool) -> float:
    params = BioreactorParams(culture=replace(CultureParams(), max_step=max_step))
    reactor = Bioreactor(params, seed=1, initial={"temperature": 22.0, "co2": 0.04})
    reactor.seed(5e7, 100.0)
    steps = int(DAYS * 86400 / increment)
    t0 = time.perf_counter()
    for _ in range(steps):
        reactor.step(increment)
        if read:
            reactor.readings()
    wall = time.perf_counter() - t0
    return steps * increment / wall


def main() -> None:
    print(f"process model, {DAYS} simulated days, target {TARGET:.0e} simulated s per wall s")
    header = ("advance by", "sub-step", "readings", "sim s/wall s", "x target")
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, (11, 9, 9, 14, 9), strict=True)))
    for increment, max_step, read in (
        (60.0, 60.0, False),
        (10.0, 300.0, False),
        (60.0, 300.0, False),
        (60.0, 300.0, True),
        (600.0, 300.0, False),
    ):
        r = rate(increment, max_step, read=read)
        flag = "yes" if read else "no"
        print(f"{increment:>9g} s {max_step:>7g} s {flag:>9} {r:>14.3g} {r / TARGET:>9.1f}")


if __name__ == "__main__":
    main()
