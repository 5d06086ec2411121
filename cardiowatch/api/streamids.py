"""Redis stream entry ids (``<ms>-<seq>``): validation, ordering, time bounds.

>>> parse("1700000000000-3")
(1700000000000, 3)
>>> after("5-1", "5-0")
True
>>> from_unix_s(1.5)
'1500-0'
"""

from __future__ import annotations

import math
import re

PATTERN = r"^[0-9]{1,20}-[0-9]{1,20}$"
_RE = re.compile(PATTERN)
_U64 = 2**64 - 1
#: Largest time bound accepted by the API (year 5138), far inside Redis' 64-bit ids.
MAX_UNIX_S = 1e11


def parse(entry_id: str) -> tuple[int, int]:
    """``(ms, seq)`` of an id, or ValueError when it is not a valid Redis stream id."""
    if not _RE.match(entry_id):
        raise ValueError("not a stream id")
    ms, seq = (int(x) for x in entry_id.split("-"))
    if ms > _U64 or seq > _U64:
        raise ValueError("stream id out of range")
    return ms, seq


def is_valid(entry_id: str) -> bool:
    """Whether ``entry_id`` is a valid Redis stream id."""
    try:
        parse(entry_id)
    except ValueError:
        return False
    return True


def checked(entry_id: str | None) -> str | None:
    """Pydantic validator: ``entry_id`` if valid (or None), else ValueError (a 422)."""
    if entry_id is not None:
        parse(entry_id)
    return entry_id


def after(a: str, b: str) -> bool:
    """Whether id ``a`` comes strictly after id ``b``."""
    return parse(a) > parse(b)


def just_before(entry_id: str) -> str | None:
    """The greatest id before ``entry_id`` (an inclusive bound), None before ``0-0``.

    >>> just_before("5-0"), just_before("5-3"), just_before("0-0")
    ('4-18446744073709551615', '5-2', None)
    """
    ms, seq = parse(entry_id)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    return f"{ms - 1}-{_U64}" if ms > 0 else None


def just_after(entry_id: str) -> str | None:
    """The least id after ``entry_id`` (an inclusive bound), None after the largest id.

    >>> just_after("5-3"), just_after("5-18446744073709551615")
    ('5-4', '6-0')
    """
    ms, seq = parse(entry_id)
    if seq < _U64:
        return f"{ms}-{seq + 1}"
    return f"{ms + 1}-0" if ms < _U64 else None


def from_unix_s(t: float, *, end: bool = False) -> str:
    """The first (or with ``end``, the last) id of the millisecond holding unix time ``t``."""
    if not (math.isfinite(t) and 0 <= t <= MAX_UNIX_S):
        raise ValueError("time out of range")
    ms = int(t * 1000)
    return f"{ms}-{_U64}" if end else f"{ms}-0"
