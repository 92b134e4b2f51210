"""Giving memory back after a large piece of work.

A process that tokenized and scored thousands of texts keeps the freed memory in its C heap
(glibc keeps freed blocks in per-thread arenas for reuse), so a model server's resident size
grows with its largest request and stays there. ``malloc_trim(0)`` returns the free parts to
the operating system; elsewhere it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.lru_cache(maxsize=1)
def _libc():
    name = ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return lib if lib is not None and hasattr(lib, "malloc_trim") else None


def release_free_memory() -> bool:
    """Return the C heap's free memory to the operating system; False where it cannot."""
    lib = _libc()
    if lib is None:
        return False
    lib.malloc_trim(0)
    return True
