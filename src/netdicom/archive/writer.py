"""Durable, atomic writes of received instances into the archive folder.

An instance is streamed into a temporary file, flushed to disk with fdatasync, linked (or
renamed) into place, and the directory entry is flushed too; only then is it reported stored.
A reader never sees a torn file: a final path holds either nothing or a complete instance.

The temporary file is unnamed where the system allows it (Linux `O_TMPFILE`, open(2)): the
inode has no directory entry until `linkat()` gives it its final name, so a transfer cut short,
even by a crash or `kill -9`, leaves nothing behind, and no shared temporary folder is locked
twice per instance (create + unlink) by every writer thread. Elsewhere (other systems, file
systems without `O_TMPFILE`, no /proc) it is a named file `DIR/.incoming/<pid>-<n>.part`, on
the same file system so the last step is a link; those of processes that no longer run are
swept at start-up.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Final

from netdicom.archive.direct_io import (
    O_DIRECT,
    DirectWriter,
    Stage,
    StagePool,
    direct_io_works,
)
from netdicom.archive.layout import UnsafePath, inside
from netdicom.archive.syncfs import little_dirty, syncfs_function
from netdicom.core.datasets import file_damage
from netdicom.core.records import frozen

log = logging.getLogger("netdicom.archive")

TEMP_DIR: Final = ".incoming"
_TEMP_NAME: Final = re.compile(r"(\d+)-\d+\.part")
_MAX_RENAMES: Final = 10_000
_DIR_CACHE_LIMIT: Final = 65_536

FileWrite = Callable[[int, memoryview], int]
"""`os.write`, or a stand-in that fails on demand (tests: a full disk)."""


class DuplicatePolicy(Enum):
    """What to do when an instance arrives whose path already holds a file."""

    KEEP = "keep"  # keep the file already there, discard the new one
    OVERWRITE = "overwrite"  # replace it atomically
    RENAME = "rename"  # store the new one beside it as NAME_1.dcm, NAME_2.dcm, ...


class Outcome(Enum):
    STORED = "stored"
    KEPT_EXISTING = "kept existing"
    OVERWROTE = "overwrote"
    RENAMED = "renamed"
    # KEEP found a damaged file (cut short, not DICOM) in the way: the new copy replaced it.
    REPLACED_DAMAGED = "replaced a damaged file"


# Outcomes that gave a file a name no file had (see Archive._sync_folders).
_NEW_NAME: Final = frozenset({Outcome.STORED, Outcome.RENAMED})


@frozen
class Placed:
    path: Path
    outcome: Outcome


class PendingFile:
    """A temporary file being written; `commit` or `discard` it exactly once.

    `path` is None for an unnamed (O_TMPFILE) file."""

    __slots__ = ("_archive", "_direct", "_fd", "path", "size", "sync_errors")

    def __init__(
        self, archive: Archive, fd: int, path: Path | None, direct: DirectWriter | None = None
    ) -> None:
        self._archive = archive
        self._fd = fd
        self.path = path
        self.size = 0
        self.sync_errors = archive.sync_errors  # see Archive.place_all
        self._direct = direct  # how an O_DIRECT file is written (archive.direct_io)

    def fileno(self) -> int:
        return self._fd

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append `data`; raises OSError (ENOSPC, EIO, EFBIG...) as the system does."""
        if self._direct is not None:
            self._direct.write(data)
            self.size = self._direct.size
            return
        view = memoryview(data)
        write = self._archive.file_write
        while view:
            written = write(self._fd, view)
            if written <= 0:
                raise OSError(errno.ENOSPC, "no space left on device")
            self.size += written
            view = view[written:]

    def write_stage(self, stage: Stage) -> None:
        """Append a stage filled elsewhere (archive.direct_io; an O_DIRECT file only)."""
        if self._direct is None:
            raise ValueError("not an O_DIRECT file")
        self._direct.write_stage(stage)
        self.size = self._direct.size

    def close_writes(self) -> None:
        """Write what an O_DIRECT file still stages (before it is synced); idempotent.
        Raises OSError as write does."""
        if self._direct is not None:
            self._direct.close_writes()

    def discard(self) -> None:
        """Close and delete the temporary file (idempotent, never raises)."""
        if self._direct is not None:
            self._direct.release()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    def commit(self, relative: PurePosixPath) -> Placed:
        """Make the file durable and put it at `relative` under the archive (blocking: call
        from a worker thread when fsync is on). On failure nothing is left behind."""
        placed = self._archive.place_all([(self, relative)])[0]
        if isinstance(placed, BaseException):
            raise placed
        return placed


# Received bytes kept in memory: large fragments as the views they came in (no copy); small
# ones copied onto the previous small one. A view costs about 200 bytes of objects whatever
# its length: a peer sending its data set in empty or one-byte fragments would otherwise make
# us hold a hundred times what it sent (found by fuzzing serve).
Kept = bytes | bytearray | memoryview
_VIEW_AT_LEAST: Final = 1024
_COALESCED_UP_TO: Final = 64 << 10


def keep(pieces: list[Kept], data: bytes | memoryview) -> None:
    """Append `data` to `pieces`, coalescing small fragments (see Kept)."""
    if len(data) >= _VIEW_AT_LEAST:
        pieces.append(data)
        return
    last = pieces[-1] if pieces else None
    if isinstance(last, bytearray) and len(last) < _COALESCED_UP_TO:
        last += data
    else:
        pieces.append(bytearray(data))


class DeferredFile:
    """A small instance held in memory until `create` writes it to a PendingFile (or
    `discard` drops it). `create` is called on the group commit's thread: a file's creation
    waits there for the file system's journal, not on the event loop (creates queue behind
    the syncs of other instances).

    Once the data set is complete, `seal` copies it into one buffer: the receiver's memory
    it referred to is free again at once (a 2 KB instance could otherwise keep a 1 MiB
    buffer alive while it waits for its group), the archive counts it in `Archive.held`
    until it is created or dropped, and `create` writes the file in one call."""

    __slots__ = ("_archive", "_header", "_pieces", "_sealed", "size")

    def __init__(self, archive: Archive, header: bytes) -> None:
        self._archive = archive
        self._header = header
        self._pieces: list[Kept] = []
        self._sealed: bytes | None = None
        self.size = len(header)

    def write(self, data: bytes | memoryview) -> None:
        keep(self._pieces, data)
        self.size += len(data)

    def seal(self) -> None:
        """The data set is complete: hold it as one buffer, counted in `Archive.held`."""
        sealed = b"".join([self._header, *self._pieces])
        self._pieces = []
        self._sealed = sealed
        self._archive.hold(len(sealed))

    def discard(self) -> None:
        self._pieces = []
        self._release()

    def take(self) -> list[Kept]:
        """The data written so far (after the header), handed to another writer."""
        pieces, self._pieces = self._pieces, []
        return pieces

    def create(self) -> PendingFile:
        """The temporary file, written (blocking); raises OSError, leaving nothing."""
        if self._sealed is not None:
            try:
                return self._archive.begin(self._sealed)
            finally:
                self._release()
        pending = self._archive.begin(self._header)
        try:
            for piece in self._pieces:
                pending.write(piece)
        except BaseException:
            pending.discard()
            raise
        self._pieces = []
        return pending

    def _release(self) -> None:
        sealed, self._sealed = self._sealed, None
        if sealed is not None:
            self._archive.hold(-len(sealed))

    def __del__(self) -> None:
        # Sealed and then dropped unused (the association went away before its answer ran):
        # the bytes it held are no longer held.
        self._release()


class Archive:
    """The archive folder: where instances are written, and how."""

    def __init__(
        self,
        root: Path,
        *,
        on_duplicate: DuplicatePolicy = DuplicatePolicy.KEEP,
        fsync: bool = True,
        file_write: FileWrite = os.write,
        unnamed_temp: bool = True,
        direct_io: bool = True,
        temp_shared: bool = False,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        # Other retrieves may write into the same folder (get and move --listen), and each
        # removes the empty temporary folder at its end: made again without a warning then
        # (two overlapping cron jobs warned "was removed", walkthrough 7a). For serve, whose
        # folder is locked, someone removed it: worth a warning.
        self.temp_shared = temp_shared
        self.root = Path(os.path.realpath(root))
        self.on_duplicate = on_duplicate
        self.fsync = fsync
        self.file_write = file_write
        self.temp_dir = self.root / TEMP_DIR
        self.temp_dir.mkdir(exist_ok=True)
        if os.stat(self.temp_dir).st_dev != os.stat(self.root).st_dev:
            # A file is written here and then linked or renamed into place: across file
            # systems that fails (EXDEV), and every store was refused with A700 while serve
            # ran as if all were well.
            raise OSError(
                f"{self.temp_dir} is on another file system than {self.root} (a link to "
                f"another disk, or a mount?): instances are written there, then moved into "
                f"place, which cannot cross file systems; make it a plain folder inside "
                f"{self.root}",
            )
        self._counter = itertools.count(1)
        self._known_dirs: set[str] = {str(self.root)}
        # Unnamed temporary files are named through this descriptor of /proc/self/fd (None:
        # named temporary files, the portable way; tests force it to cover it).
        self._fds = _unnamed_files_dir(self.temp_dir) if unnamed_temp else None
        if self._fds is not None:
            weakref.finalize(self, os.close, self._fds)
        # Groups are synced through this descriptor: syncfs reports a write error once per
        # open file, so one opened before any instance sees every error that follows.
        self._sync_fd = os.open(self.temp_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        weakref.finalize(self, os.close, self._sync_fd)
        # Write errors syncfs has reported so far (it cannot say whose write failed).
        self.sync_errors = 0
        # Bytes of received instances held in memory until written (DeferredFile.seal).
        self._held = 0
        self._held_lock = threading.Lock()
        # Large instances bypass the page cache when the archive waits for the disk anyway.
        self.direct_io = direct_io and fsync and direct_io_works(self.temp_dir)
        self.stages = StagePool()  # for direct_io files

    @property
    def held(self) -> int:
        """Bytes of complete instances held in memory, not yet written (sealed
        DeferredFiles): the storage service writes new ones through the spool past a limit."""
        return self._held

    def hold(self, count: int) -> None:
        """Count `count` more bytes as held (negative: released); any thread."""
        with self._held_lock:
            self._held += count

    @property
    def unnamed_temp(self) -> bool:
        return self._fds is not None

    def sweep(self) -> int:
        """Delete temporary files left by processes that are gone; return how many."""
        removed = 0
        for entry in os.scandir(self.temp_dir):
            match = _TEMP_NAME.fullmatch(entry.name)
            if match is None or not entry.is_file(follow_symlinks=False):
                continue
            pid = int(match.group(1))
            if pid != os.getpid() and process_alive(pid):
                continue  # another serve process on the same folder is writing it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
        return removed

    def begin(self, header: bytes, *, large: bool = False) -> PendingFile:
        """A new temporary file holding `header` (preamble + file meta, maybe the data set
        after it). `large`: more is to come, at least a few hundred KB; it is written with
        O_DIRECT where that works and the archive is durable (archive.direct_io)."""
        direct = large and self.direct_io
        extra = O_DIRECT if direct else 0
        try:
            fd, path = self._open_temp(extra)
        except FileNotFoundError:
            if not self.root.is_dir():
                # The archive folder itself is gone (renamed, unmounted): not made again here,
                # where a store would land in a folder nobody serves.
                log.error("the archive folder %s is gone: stores fail until it is back", self.root)
                raise
            # The temporary folder is gone: on Linux it is always empty (unnamed files), and
            # `find DIR -type d -empty -delete` removes it. Every store failed until a restart.
            log.log(
                logging.DEBUG if self.temp_shared else logging.WARNING,
                "the temporary folder %s was removed: made again",
                self.temp_dir,
            )
            self.temp_dir.mkdir(exist_ok=True)
            fd, path = self._open_temp(extra)
        writer = DirectWriter(fd, self.stages, self.file_write) if direct else None
        pending = PendingFile(self, fd, path, writer)
        try:
            pending.write(header)
        except OSError:
            pending.discard()
            raise
        return pending

    def _open_temp(self, extra: int) -> tuple[int, Path | None]:
        if self.unnamed_temp:
            return os.open(self.temp_dir, _UNNAMED_FLAGS | extra, 0o644), None
        path = self.temp_dir / f"{os.getpid()}-{next(self._counter)}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | extra
        return os.open(path, flags, 0o644), path

    def place_all(
        self, files: Sequence[tuple[PendingFile, PurePosixPath]]
    ) -> list[Placed | OSError | UnsafePath]:
        """Make written temporary files durable and give each its final name (blocking);
        what became of each, in order. Every file is closed and no temporary name is left.

        A group commit in three steps: the data of every file is synced, then the files are
        named, then the folders that gained an entry are synced. No file is named before its
        data is durable, so after a crash a final name never shows a file whose data did not
        reach the disk (ext4 does not order a link() after data writes).

        A single file is synced with fdatasync and its folder with fsync. For a group, where
        the system has a syncfs that reports errors (archive.syncfs) and little else waits to
        be written (`little_dirty`: syncfs flushes other programs' data too), each sync step
        is one syncfs of the file system instead: a sync is a device flush that costs about
        the same for one file as for fifty (measured here: 2,000 files of 2 KB in groups of 8
        took 0.24 s with syncfs against 0.53 s with fdatasync and a folder fsync per group).
        A failed syncfs fails every file of the group, and every file that was being written
        when it failed: the error may have been one of theirs (the kernel also writes data
        back on its own, and reports the error to the next syncfs only), so a file whose
        `sync_errors` (the count when it was created) is behind the archive's fails too.
        fdatasync reports a file's own errors, whenever they happened."""
        grouped = self.fsync and len(files) > 1 and little_dirty()
        syncfs = syncfs_function() if grouped else None
        try:
            targets = self._sync_data(files, syncfs)
            results, folders = self._name_all(files, targets)
            if self.fsync:
                self._sync_folders(folders, results, syncfs)
        finally:
            for pending, _ in files:
                # Closes it and drops its temporary name: it has its final one, or failed.
                pending.discard()
        return results

    def _sync_data(
        self,
        files: Sequence[tuple[PendingFile, PurePosixPath]],
        syncfs: Callable[[int], None] | None,
    ) -> list[Path | OSError | UnsafePath]:
        """Step 1: each file's final path, or why it fails; its data durable (fsync on)."""
        targets: list[Path | OSError | UnsafePath] = []
        for pending, relative in files:
            try:
                pending.close_writes()
                final = self._target(relative)
                if self.fsync and syncfs is None:
                    os.fdatasync(pending.fileno())
                targets.append(final)
            except (OSError, UnsafePath) as exc:
                targets.append(exc)
        if syncfs is not None:
            # Every file of the group is in the temporary folder's file system (a link cannot
            # cross file systems), so one syncfs through that folder covers all.
            error = self._syncfs(syncfs)
            for number, (pending, _) in enumerate(files):
                if error is not None:
                    targets[number] = error
                elif pending.sync_errors != self.sync_errors:
                    targets[number] = OSError(
                        errno.EIO, "a write error was reported while this file was written"
                    )
        return targets

    def _name_all(
        self,
        files: Sequence[tuple[PendingFile, PurePosixPath]],
        targets: list[Path | OSError | UnsafePath],
    ) -> tuple[list[Placed | OSError | UnsafePath], dict[str, list[int]]]:
        """Step 2: name each synced file; the outcomes, and for each folder that gained an
        entry (its own, and any created for it) the files whose durability depends on it."""
        results: list[Placed | OSError | UnsafePath] = []
        folders: dict[str, list[int]] = {}
        for number, ((pending, _), target) in enumerate(zip(files, targets, strict=True)):
            if isinstance(target, BaseException):
                results.append(target)
                continue
            try:
                placed, changed = self._name(pending, target)
            except (OSError, UnsafePath) as exc:
                results.append(exc)
                continue
            results.append(placed)
            for folder in (*changed, str(placed.path.parent)):
                folders.setdefault(folder, []).append(number)
        return results, folders

    def _sync_folders(
        self,
        folders: dict[str, list[int]],
        results: list[Placed | OSError | UnsafePath],
        syncfs: Callable[[int], None] | None,
    ) -> None:
        """Step 3: make the new names durable; a file whose folder fails to sync fails, and
        a name it was given afresh is taken back (its sender is told it was not stored, and
        will send it again). One that replaced a file (overwrite) stays: the old one is gone.
        Either way the data are whole: should the unlink not reach the disk, a crash leaves a
        complete file, which the start-up check indexes."""
        failed: dict[str, OSError] = {}
        if syncfs is not None:
            shared = self._syncfs(syncfs) if folders else None
            if shared is not None:
                failed = dict.fromkeys(folders, shared)
        else:
            for folder in folders:
                try:
                    _fsync_dir(folder)
                except OSError as exc:
                    failed[folder] = exc
        for folder, error in failed.items():
            for number in folders[folder]:
                placed = results[number]
                if isinstance(placed, Placed) and placed.outcome in _NEW_NAME:
                    with contextlib.suppress(OSError):
                        os.unlink(placed.path)
                results[number] = error

    def _syncfs(self, syncfs: Callable[[int], None]) -> OSError | None:
        try:
            syncfs(self._sync_fd)
        except OSError as exc:
            self.sync_errors += 1
            return exc
        return None

    def _target(self, relative: PurePosixPath) -> Path:
        """The final path of `relative`, refused (UnsafePath) unless lexically inside."""
        if relative.is_absolute() or ".." in relative.parts or len(relative.parts) < 1:
            raise UnsafePath(f"{relative} would be outside the archive")
        return self.root.joinpath(*relative.parts)

    def _name(self, pending: PendingFile, final: Path) -> tuple[Placed, list[str]]:
        """Give the (synced) file its name at `final`, creating its folder if need be; the
        folders created on the way, whose parents' entries changed."""
        parent = final.parent
        known = str(parent) in self._known_dirs
        # Inside once symbolic links are resolved, for a folder not yet checked; folders
        # already checked are cached, sparing ~15 lstat() per file.
        if not known and not inside(self.root, parent):
            raise UnsafePath(f"{final} would be outside the archive")
        changed: list[str] = []
        if not known:
            changed = self._ensure_dir(parent)
            if not inside(self.root, parent):
                raise UnsafePath(f"{parent} resolves outside the archive")
            self._remember(parent)
        try:
            return self._put(pending, pending.fileno(), final), changed
        except FileNotFoundError:
            if not known:
                raise
            # The cached folder was removed meanwhile (someone tidied the archive): make it
            # again, check it again, and place the file there.
            self._known_dirs.discard(str(parent))
            changed = self._ensure_dir(parent)
            if not inside(self.root, parent):
                raise UnsafePath(f"{parent} resolves outside the archive") from None
            self._remember(parent)
            return self._put(pending, pending.fileno(), final), changed

    def _put(self, pending: PendingFile, fd: int, final: Path) -> Placed:
        policy = self.on_duplicate
        if policy is DuplicatePolicy.OVERWRITE:
            existed = final.exists()
            self._replace(pending, fd, final)
            return Placed(final, Outcome.OVERWROTE if existed else Outcome.STORED)
        # link() never replaces an existing name, so two associations storing the same
        # instance at once cannot both win, and the loser never tears the winner's file.
        if self._link(pending, fd, final):
            return Placed(final, Outcome.STORED)
        if policy is DuplicatePolicy.KEEP:
            if file_damage(final) is None:
                return Placed(final, Outcome.KEPT_EXISTING)
            # What is there is cut short or not DICOM (damaged by hand, a disk error): keeping
            # it threw away the one good copy offered and answered success; the sender never
            # sends it again (walkthrough 5).
            log.warning("%s was damaged: replaced by the copy just received", final)
            self._replace(pending, fd, final)
            return Placed(final, Outcome.REPLACED_DAMAGED)
        for number in range(1, _MAX_RENAMES):
            candidate = final.with_name(f"{final.stem}_{number}{final.suffix}")
            if self._link(pending, fd, candidate):
                return Placed(candidate, Outcome.RENAMED)
        raise OSError(errno.EEXIST, f"{_MAX_RENAMES} copies of {final.name} already exist")

    def remove(self, path: Path) -> None:
        """Delete a stored file (a version the duplicate policy let go) and the folders it
        leaves empty, up to the archive's root. On the thread that places files.

        With fsync on, the folder that keeps the last removed name is made durable before
        the caller answers: an overwrite acknowledged and then lost to a power cut left both
        versions, and a later index rebuild could pick the old one (walkthrough 6a)."""
        path.unlink(missing_ok=True)
        folder = path.parent
        while folder != self.root and folder.is_relative_to(self.root):
            try:
                folder.rmdir()
            except OSError:
                break  # not empty (or gone): what is above it is not empty either
            self._known_dirs.discard(str(folder))
            folder = folder.parent
        if self.fsync:
            with contextlib.suppress(OSError):  # gone: nothing of ours left to make durable
                _fsync_dir(str(folder))

    def _replace(self, pending: PendingFile, fd: int, final: Path) -> None:
        """Give the file the name `final`, replacing what is there atomically."""
        source = pending.path
        if source is None:
            # link() cannot replace: name the unnamed file in the temporary folder (swept
            # at start-up if we die right here), then rename it over `final`.
            source = self.temp_dir / f"{os.getpid()}-{next(self._counter)}.part"
            if not self._link(pending, fd, source):
                raise FileExistsError(errno.EEXIST, "temporary name taken", str(source))
        try:
            os.replace(source, final)
        except BaseException:
            if pending.path is None:
                with contextlib.suppress(OSError):
                    os.unlink(source)
            raise

    def _link(self, pending: PendingFile, fd: int, target: Path) -> bool:
        """Give the file `target` as a (further) name; False when that name exists."""
        try:
            if pending.path is None:
                assert self._fds is not None
                # linkat(fds, "N", AT_FDCWD, target, AT_SYMLINK_FOLLOW): how open(2) names an
                # O_TMPFILE file without CAP_DAC_READ_SEARCH (os.link makes that call, and not
                # link(), because a directory fd is given).
                os.link(str(fd), target, src_dir_fd=self._fds, follow_symlinks=True)
            else:
                os.link(pending.path, target)
        except FileExistsError:
            return False
        except OSError as exc:
            if pending.path is None or exc.errno not in _NO_HARD_LINKS:
                raise
            # A file system without hard links: check, then rename (a narrow race, never torn).
            if target.exists():
                return False
            os.rename(pending.path, target)
        return True

    def _ensure_dir(self, directory: Path) -> list[str]:
        """Create `directory` and missing parents; return the directories whose entries
        changed (to be fsynced)."""
        missing: list[Path] = []
        current = directory
        while not current.is_dir():
            missing.append(current)
            current = current.parent
        changed: list[str] = []
        for path in reversed(missing):
            with contextlib.suppress(FileExistsError):
                path.mkdir()
                changed.append(str(path.parent))
        return changed

    def _remember(self, directory: Path) -> None:
        if len(self._known_dirs) > _DIR_CACHE_LIMIT:
            self._known_dirs = {str(self.root)}
        self._known_dirs.add(str(directory))


_NO_HARD_LINKS: Final = (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV)


# O_TMPFILE (Linux >= 3.11) needs write access; the flag includes O_DIRECTORY.
_UNNAMED_FLAGS: Final = os.O_WRONLY | getattr(os, "O_TMPFILE", 0) | os.O_CLOEXEC


def _unnamed_files_dir(directory: Path) -> int | None:
    """A descriptor of /proc/self/fd when `directory` takes unnamed files that can then be
    named (the file system has O_TMPFILE, /proc is there), else None: tried once, with a
    probe that is removed."""
    if not hasattr(os, "O_TMPFILE"):
        return None
    probe = directory / f"{os.getpid()}-0.part"  # a name the sweep knows; counters start at 1
    try:
        fds = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fd = os.open(directory, _UNNAMED_FLAGS, 0o644)
        try:
            os.link(str(fd), probe, src_dir_fd=fds, follow_symlinks=True)
        finally:
            os.close(fd)
    except OSError:
        os.close(fds)
        return None
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return fds


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
