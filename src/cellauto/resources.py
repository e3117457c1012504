"""Where the files under ``schemas/`` live: inside an installed wheel, or in a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).parent / "_schemas"
_CHECKOUT = Path(__file__).resolve().parents[2] / "schemas"


def schemas_dir() -> Path:
    """The ``schemas/`` folder: packaged with the wheel, else the source checkout's."""
    if _PACKAGED.is_dir():
        return _PACKAGED
    if _CHECKOUT.is_dir():
        return _CHECKOUT
    raise FileNotFoundError(
        f"cellauto's schemas folder is missing (looked in {_PACKAGED} and {_CHECKOUT}); "
        "reinstall cellauto"
    )
