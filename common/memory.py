"""The process's heap: large blocks given back to the kernel when freed.

glibc's allocator serves blocks above a threshold from their own maps and
unmaps them when freed, but it raises that threshold each time such a block
is freed, so that later large blocks come from the heap, which it keeps. A
party allocates large transient arrays while it loads and aligns its rows
(sorting IDs, PSI values); with the threshold raised they would stay in its
resident memory for good. ``keep_large_blocks_mapped`` fixes the threshold;
``give_back_free_memory`` returns the heap's free pages after a phase.
Elsewhere than glibc both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging

logger = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3
# Blocks from 1 MB up get maps of their own (numpy arrays of a chunk or more).
_THRESHOLD = 1024 * 1024


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    if libc is None or not hasattr(libc, "mallopt"):
        return None
    return libc


def keep_large_blocks_mapped() -> None:
    """Blocks of 1 MB and more are always mapped and unmapped when freed."""
    libc = _libc()
    if libc is not None and not libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD):
        logger.debug("mallopt(M_MMAP_THRESHOLD) was refused")


def give_back_free_memory() -> None:
    """Returns the free pages of the heap to the kernel (``malloc_trim``)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
