"""syncfs(2): make everything written to one file system durable in one call (Linux).

Python's `os` has fsync and fdatasync but not syncfs, so it is called through ctypes. It is
used only where it reports the errors of the writes it flushes: since Linux 5.8 the kernel
tracks writeback errors per file system and syncfs returns one that happened after the
descriptor it is given was opened (syncfs(2), ERRORS and VERSIONS); before that it returned 0
whatever happened, so older kernels never use it.

syncfs also flushes what other programs wrote to that file system. `little_dirty()` tells
whether the system holds little unwritten data (/proc/meminfo, proc(5)): while another
program's large write is pending, a group is synced file by file instead, so that it never
waits for gigabytes that are not ours.
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Callable
from functools import cache

__all__ = ["DIRTY_LIMIT", "little_dirty", "syncfs_function"]

_FIRST_REPORTING: tuple[int, int] = (5, 8)
# Dirty + Writeback (system-wide) above which groups are synced file by file. A group of ours
# holds at most 64 instances of 256 KiB plus what the spool has in flight (32 MiB); big
# instances' own data (being received) counts too, and 256 MiB leaves room for it.
DIRTY_LIMIT = 256 << 20


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


def little_dirty(meminfo: str = "/proc/meminfo", limit: int = DIRTY_LIMIT) -> bool:
    """True when the data waiting to be written back, system-wide, is below `limit` bytes
    (False when /proc/meminfo cannot be read: then nothing is assumed)."""
    pending = 0
    try:
        with open(meminfo, "rb") as file:
            for line in file:
                if line.startswith((b"Dirty:", b"Writeback:")):
                    pending += int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return False
    return pending < limit
