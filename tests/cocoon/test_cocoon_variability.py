"""The seed gives each simulated Cocoon batch its own plausible culture (issue 12)."""

from __future__ import annotations

import statistics

from cellauto.profiles import load_profile
from cellauto.sim import Bioreactor, BioreactorParams
from cellauto_simulators.cocoon.device import culture_params

PROFILE = load_profile("cocoon")


def harvest(seed: int) -> float:
    """Viable cells after a 7-day expansion of 5e7 cells in 200 mL, fed daily."""
    params = BioreactorParams.from_profile(PROFILE)
    reactor = Bioreactor(
        BioreactorParams(culture=culture_params(seed), medium=params.medium, loops=params.loops),
        seed=seed,
    )
    reactor.seed(5e7, 100.0)
    for day in range(1, 8):
        reactor.advance_to(day * 86400.0)
        room = 200.0 - reactor.culture.state.volume
        if room > 1.0:
            reactor.feed(min(25.0, room))
    return reactor.harvest()


def test_each_seed_expands_to_its_own_plausible_harvest() -> None:
    harvests = [harvest(seed) for seed in range(8)]
    assert len(set(harvests)) == len(harvests)
    spread = statistics.stdev(harvests) / statistics.mean(harvests)
    assert 0.02 < spread < 0.5, spread
    assert all(h > 5e7 for h in harvests), "every batch expands"


def test_a_seed_repeats_its_batch() -> None:
    assert culture_params(3) == culture_params(3)
    assert harvest(3) == harvest(3)
