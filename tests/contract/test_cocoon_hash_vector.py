"""The Cocoon's LoadProtocol content hash computed from schemas/protocols/cocoon.md alone: the
document's recipe applied to its worked example gives its canonical form and its hash. No
cellauto import here, on purpose."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

COCOON_DOC = Path(__file__).parents[2] / "schemas" / "protocols" / "cocoon.md"


def worked_example() -> tuple[str, str, str]:
    """The document's Definition, canonical form and ContentHash."""
    text = COCOON_DOC.read_text(encoding="utf-8").split("Worked example", 1)[1]
    definition = text.split("```", 2)[1].strip()
    canonical = re.search(r"has the canonical form\s+`([^`]+)`", text)
    digest = re.search(r"ContentHash `([0-9a-f]{64})`", text)
    assert canonical is not None
    assert digest is not None
    return definition, canonical[1], digest[1]


def canonical_form(definition: str) -> str:
    """The recipe of cocoon.md section 3, as an independent client writes it."""
    data = json.loads(definition)
    data.pop("content_hash", None)
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def test_the_worked_example_follows_the_recipe() -> None:
    definition, canonical, digest = worked_example()
    assert canonical_form(definition) == canonical
    assert hashlib.sha256(canonical.encode("utf-8")).hexdigest() == digest
