"""One `serve` per archive folder: an exclusive lock held for the life of the process.

Two servers on one folder would each sweep the other's temporary files at start-up and write
one index from two processes with their own caches of its rows. The lock is `flock(2)` on
`DIR/.netdicom/serve.lock`: the kernel releases it when the process ends, however it ends, so
a crashed serve never leaves a stale lock behind. The file holds the owner's process ID, for
the message the second one prints. The folder itself is locked too: users are told to delete
`DIR/.netdicom` to rebuild the index, and the lock went with it (a second serve then started on
the folder, walkthrough 6a).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from netdicom.archive.index import INDEX_DIR

LOCK_NAME = "serve.lock"


class FolderInUse(OSError):
    """Another serve holds the folder, or its lock cannot be made (an OSError: exit code 3,
    bad input)."""


def lock_folder(directory: Path) -> int:
    """Take the folder's lock; its descriptor (keep it open: closing it releases the lock).
    FolderInUse when another process holds it."""
    path = directory / INDEX_DIR / LOCK_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _lock_the_folder_itself(directory, path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except FolderInUse:
        raise  # held by another serve: not a write problem (it said "is it read-only?")
    except OSError as exc:
        raise FolderInUse(
            f"cannot write in {path.parent}: {exc.strerror or exc} (serve keeps its index and "
            "lock there: is the folder read-only, or not writable by this user?)"
        ) from None
    _take(fd, directory, path)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _lock_the_folder_itself(directory: Path, path: Path) -> None:
    """flock(2) on the folder's own descriptor, kept open for the life of the process."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _take(fd, directory, path)
    except FolderInUse:
        raise
    except OSError:
        return  # a file system without flock on folders: the lock file alone
    _HELD.append(fd)


def _take(fd: int, directory: Path, path: Path) -> None:
    """flock(2) `fd` exclusively, at once; on failure `fd` is closed (FolderInUse when
    another process holds it)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise _in_use(directory, path) from None
    except BaseException:
        os.close(fd)
        raise


def _in_use(directory: Path, path: Path) -> FolderInUse:
    owner = ""
    with contextlib.suppress(OSError, ValueError):
        owner = f" (process {int(path.read_text().strip())})"
    return FolderInUse(
        f"{directory} is served already by another netdicom serve{owner}: one server "
        "per folder (stop it, or serve another folder)"
    )


# Descriptors of the folders locked by this process (closing one would release its lock).
_HELD: list[int] = []


__all__ = ["LOCK_NAME", "FolderInUse", "lock_folder"]
