"""Miltenyi CliniMACS Prodigy adapter, speaking cellauto's own serial protocol profile
(schemas/protocols/prodigy.md; not Miltenyi's interface, which is not public)."""

from .adapter import ProdigyAdapter

__all__ = ["ProdigyAdapter"]
