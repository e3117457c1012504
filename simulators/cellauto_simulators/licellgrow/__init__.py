"""Simulated PHCbi LiCellGrow (assumption-based) served over SiLA 2."""

from cellauto_simulators.licellgrow.handle import LiCellGrowSimulator, start_simulator

__all__ = ["LiCellGrowSimulator", "start_simulator"]
