"""The batch id rule: a batch id is an identifier, never a path.

A batch id is 1 to 128 characters: letters, digits, ``.``, ``_`` and ``-``, starting with a
letter or a digit, and without ``..``. So it cannot hold a path separator, name a parent
folder, be absolute, hide as a dot-file, or carry control characters or spaces; the record of
batch ``B-0001`` is always the folder ``<records>/B-0001``.
"""

from __future__ import annotations

import re

from cellauto.errors import InvalidBatchId

MAX_LENGTH = 128
_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
RULE = (
    f"1 to {MAX_LENGTH} letters, digits, '.', '_' or '-', starting with a letter or a digit, "
    "without '..'"
)


def check_batch_id(batch_id: object) -> str:
    """`batch_id` if it follows the rule, else InvalidBatchId naming the rule."""
    if not isinstance(batch_id, str):
        raise InvalidBatchId(f"batch id {batch_id!r} is not a string; a batch id is {RULE}")
    if len(batch_id) > MAX_LENGTH:
        raise InvalidBatchId(
            f"batch id {batch_id[:20]!r}... is {len(batch_id)} characters long; a batch id is "
            f"{RULE}"
        )
    if not _RULE.fullmatch(batch_id) or ".." in batch_id:
        raise InvalidBatchId(f"batch id {batch_id!r} is not an identifier; a batch id is {RULE}")
    return batch_id
