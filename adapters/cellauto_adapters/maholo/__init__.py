"""RBI LabDroid Maholo through cellauto's Maholo HTTP API (schemas/protocols/maholo.md)."""

from .adapter import MaholoAdapter

__all__ = ["MaholoAdapter"]
