"""Give freed heap memory back to the operating system when a model goes idle.

A model's steps allocate large temporaries of varying sizes (Kokoro's decoder scales with the
segment's length), and glibc keeps freed chunks in its arenas, so resident memory after a busy spell
stays near the spell's peak even though nothing holds it. ``malloc_trim(0)`` returns those pages;
calling it whenever a worker goes idle costs milliseconds once per busy spell and makes an idle
server's RSS show what it really holds (the soak test relies on that to tell a leak from a peak).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)
_libc = None


def release_free_memory() -> None:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else False
        except OSError:
            _libc = False
    trim = getattr(_libc, "malloc_trim", None) if _libc else None
    if trim is not None:  # glibc only (musl and macOS have no malloc_trim)
        trim(0)
