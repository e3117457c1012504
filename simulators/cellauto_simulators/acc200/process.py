"""The ACC-200 process model: closed culture vessels growing cell sheets or iPSC colonies, and
the incubator and medium store around them. Every number here is assumed (the vendor publishes
none); batch-to-batch and vessel-to-vessel variability is drawn from the seed."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

DAY = 86400.0
SHEET_RATE = 0.55 / DAY  # 1/s: logistic rate of a cell sheet's cover (about 12 days to 95 %)
IPSC_DOUBLING = 26 * 3600.0  # s: iPSC doubling time in fresh medium
SHEET_CELLS = 2.0e6  # cells in a confluent sheet vessel
IPSC_CAPACITY = 2.5e7  # cells one vessel holds before passage (x4 after it: 1e9 in ten vessels)
SHEET_SEED = 0.06  # covered fraction right after seeding
VESSEL_MEDIUM = 20.0  # mL a primed vessel holds
STALE_FACTOR = 1.5  # medium older than this many exchange intervals halves growth
LEAK_RATE = 2.0 / 3600.0  # mL/s a leaking vessel loses
STORE_VOLUME = 4000.0  # mL of fresh medium in a full store


@dataclass
class Vessel:
    """One closed culture vessel."""

    index: int
    rate: float
    state: str = "empty"
    medium_volume: float = 0.0
    cells: float = 0.0
    capacity: float = SHEET_CELLS
    confluency: float = 0.0
    """Covered fraction (0..1) the microscope last measured."""
    medium_changes: int = 0
    last_image: int = 0
    medium_age: float = 0.0
    leaking: bool = False

    @property
    def cover(self) -> float:
        """Covered fraction now (0..1)."""
        return min(1.0, self.cells / self.capacity) if self.capacity > 0 else 0.0

    def seed(self, cells: float) -> None:
        self.cells = cells
        self.state = "culturing"
        self.medium_age = 0.0

    def advance(self, dt: float, interval: float) -> None:
        """Grow for `dt` s; medium older than `STALE_FACTOR` exchange intervals halves growth."""
        if self.leaking:
            self.medium_volume = max(0.0, self.medium_volume - LEAK_RATE * dt)
        if self.cells <= 0 or self.state in ("empty", "loaded", "fault"):
            return
        self.medium_age += dt
        rate = self.rate * (
            0.5 if interval > 0 and self.medium_age > STALE_FACTOR * interval else 1
        )
        if self.medium_volume <= 0:
            rate = 0.0
        x = self.cells / self.capacity
        # logistic growth, closed form over dt
        self.cells = (
            self.capacity / (1 + (1 / x - 1) * math.exp(-rate * dt)) if x < 1 else self.cells
        )

    def change_medium(self, volume: float) -> float:
        """Replace `volume` mL of spent medium with fresh; returns fresh medium used."""
        self.medium_changes += 1
        self.medium_age = 0.0
        self.medium_volume = max(self.medium_volume, min(volume, VESSEL_MEDIUM * 2))
        return volume


def make_vessels(seed: int, program: str) -> list[Vessel]:
    """Ten vessels whose growth differs a little (spread 8 %, assumed)."""
    rng = random.Random(f"acc200-vessels:{seed}")
    ipsc = "ipsc" in program.lower()
    base = math.log(2) / IPSC_DOUBLING if ipsc else SHEET_RATE
    vessels = []
    for i in range(1, 11):
        factor = min(1.25, max(0.75, rng.gauss(1.0, 0.08)))
        vessels.append(
            Vessel(index=i, rate=base * factor, capacity=IPSC_CAPACITY if ipsc else SHEET_CELLS)
        )
    return vessels


@dataclass
class Environment:
    """Incubator and medium store readings around their setpoints (noise assumed)."""

    rng: random.Random
    temperature: float = 37.0
    humidity: float = 95.0
    co2: float = 5.0
    store_temperature: float = 4.0
    store_volume: float = STORE_VOLUME

    def read(self, setpoints: dict[str, float]) -> dict[str, float]:
        g = self.rng.gauss
        self.temperature = setpoints["incubator.temperature_setpoint"] + g(0.0, 0.05)
        self.humidity = setpoints["incubator.humidity_setpoint"] + g(0.0, 0.4)
        self.co2 = setpoints["incubator.co2_setpoint"] + g(0.0, 0.05)
        self.store_temperature = setpoints["medium_storage.temperature_setpoint"] + g(0.0, 0.1)
        return {
            "incubator.temperature": self.temperature,
            "incubator.humidity": min(100.0, self.humidity),
            "incubator.co2": self.co2,
            "medium_storage.temperature": self.store_temperature,
            "medium_storage.medium_volume": self.store_volume,
        }
