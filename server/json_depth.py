"""How deeply a JSON text nests, found without parsing it.

Python's JSON decoder recurses once per level and raises ``RecursionError`` (a 500) on a body like
``[`` x 100,000 long before any schema sees it. Bodies and realtime events are checked here first:
the string literals are blanked out, then the depth is the running sum of the remaining brackets,
a few vectorised passes over at most ``max_body_bytes``.
"""

from __future__ import annotations

import re

import numpy as np

#: A JSON string literal (escapes included); its brackets are text, not structure.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


def json_depth(text: bytes | str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (0 for a scalar); malformed text is measured as is."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if b"[" not in data and b"{" not in data:
        return 0
    structure = _STRING.sub(b'""', data)
    steps = _STEP[np.frombuffer(structure, dtype=np.uint8)].astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))
