"""A disk that fails on cue: `Archive(file_write=...)` stand-ins for the archive's tests."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

FileWrite = Callable[[int, memoryview], int]


def fails_on_write(number: int, code: int = errno.ENOSPC, *, and_after: bool = False) -> FileWrite:
    """A write function that raises OSError(`code`) on its `number`-th call (1-based), and on
    every call after it when `and_after`; the other calls write for real."""
    calls = 0

    def write(fd: int, data: memoryview) -> int:
        nonlocal calls
        calls += 1
        if calls == number or (and_after and calls > number):
            raise OSError(code, os.strerror(code))
        return os.write(fd, data)

    return write
