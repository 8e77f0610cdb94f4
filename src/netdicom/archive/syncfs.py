"""syncfs(2): make everything written to one file system durable in one call (Linux).

Python's `os` has fsync and fdatasync but not syncfs, so it is called through ctypes. It is
used only where it reports the errors of the writes it flushes: since Linux 5.8 the kernel
tracks writeback errors per file system and syncfs returns one that happened after the
descriptor it is given was opened (syncfs(2), ERRORS and VERSIONS); before that it returned 0
whatever happened, so older kernels never use it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from functools import cache

__all__ = ["syncfs_function"]

_FIRST_REPORTING: tuple[int, int] = (5, 8)


def _kernel_version(release: str) -> tuple[int, int]:
    """(major, minor) of a Linux release string such as "6.18.44-fc-v857"."""
    parts = release.split(".", 2)
    try:
        return int(parts[0]), int("".join(c for c in parts[1].split("-")[0] if c.isdigit()))
    except (IndexError, ValueError):
        return (0, 0)


@cache
def syncfs_function() -> Callable[[int], None] | None:
    """A function that syncs the file system holding an open descriptor (raises OSError as
    the system reports it), or None where syncfs is missing or does not report errors."""
    if not sys.platform.startswith("linux"):
        return None
    if _kernel_version(os.uname().release) < _FIRST_REPORTING:
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.syncfs
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int]
    call.restype = ctypes.c_int

    def syncfs(fd: int) -> None:
        if call(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"syncfs: {os.strerror(code)}")

    return syncfs
