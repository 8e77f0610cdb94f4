"""Planning a store: which files, which presentation contexts, how many associations.

Pure apart from reading file headers (netdicom.core.datasets.probe_file): nothing here talks
to a peer, so every rule can be tested with files on disk and plain values.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Final, Literal

from netdicom.core import uids
from netdicom.core.acse import AcceptedContext, ProposedContext
from netdicom.core.datasets import DicomFile, NotSendable, probe_file
from netdicom.core.records import frozen
from netdicom.core.sop_classes import is_compressed

# Context IDs are the odd numbers 1..255 (PS3.8 §9.3.2.2): 128 per association.
MAX_CONTEXTS = 128
_NATIVE = (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE)


@frozen
class Skipped:
    """A path that is not sent. `failed` is True for DICOM files that are broken (they count
    as not stored); False for files that are no instances at all (non-DICOM, DICOMDIR)."""

    path: Path
    reason: str
    failed: bool


@frozen
class Scan:
    files: tuple[DicomFile, ...]
    skipped: tuple[Skipped, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.dataset_length for f in self.files)


_Kind = Literal["dir", "file", "walked"]


# The folders serve keeps in an archive (index and lock; transfers in progress): a `store -r`
# of an archive listed index.sqlite, its -wal and -shm and serve.lock as skipped non-DICOM
# files (walkthrough 6d).
_OWN_FOLDERS: Final = frozenset({".netdicom", ".incoming"})  # INDEX_DIR, TEMP_DIR


def _serves(entry: os.DirEntry[str]) -> bool:
    """`entry` is the .netdicom folder of a serve archive (its index or lock is there): a
    folder of another tool's with that name is walked (its files were dropped unseen)."""
    if not entry.is_dir(follow_symlinks=False):
        return False
    return any(os.path.exists(os.path.join(entry.path, n)) for n in ("index.sqlite", "serve.lock"))


def _walk(directory: Path, visited: set[tuple[int, int]], skipped: list[Skipped]) -> list[Path]:
    """The files under `directory`, depth first and sorted (runs are reproducible and instances
    go out in series order). Links to directories are followed, as `storescu +sd +r` does;
    `visited` holds the device and inode of every directory walked, so a loop, or a folder
    reached twice, is walked once. What cannot be listed or reached goes to `skipped`: never
    dropped in silence, since it may hold instances the user expects to be sent."""
    files: list[Path] = []
    stack = [directory]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            # A path longer than PATH_MAX (ENAMETOOLONG), a folder we may not read, ...
            skipped.append(_unreachable(folder, "cannot list the folder", exc))
            continue
        folders: list[Path] = []
        archive = any(e.name == ".netdicom" and _serves(e) for e in entries)
        for entry in entries:
            if archive and entry.name in _OWN_FOLDERS and entry.is_dir(follow_symlinks=False):
                continue  # an archive of serve's: its index and temporary files are no data
            path = Path(entry.path)
            kind = _kind(entry, visited)
            if isinstance(kind, Skipped):
                skipped.append(kind)
            elif kind == "dir":
                folders.append(path)
            elif kind == "file":
                files.append(path)
        # Reversed onto the stack: the first folder in sorted order is walked next.
        stack.extend(reversed(folders))
    return files


def _kind(entry: os.DirEntry[str], visited: set[tuple[int, int]]) -> _Kind | Skipped:
    """A folder to walk, a file to probe, a folder already walked, or why it is set aside."""
    path = Path(entry.path)
    try:
        if entry.is_dir():  # follows a link
            return "dir" if _first_visit(path, visited) else "walked"
        if entry.is_file():
            return "file"
        if entry.is_symlink():
            return Skipped(path, f"a broken symbolic link (to {os.readlink(path)})", failed=True)
    except OSError as exc:
        # A link loop (ELOOP), a name past PATH_MAX, a folder we may not search, ...
        return _unreachable(path, "cannot read", exc)
    # A FIFO, socket or device: never a DICOM file (and opening a FIFO would block).
    return Skipped(path, "not a regular file", failed=False)


def _first_visit(directory: Path, visited: set[tuple[int, int]]) -> bool:
    info = os.stat(directory)
    key = (info.st_dev, info.st_ino)
    if key in visited:
        return False
    visited.add(key)
    return True


def _unreachable(path: Path, what: str, exc: OSError) -> Skipped:
    # Failed, not skipped: unlike a non-DICOM file, what is behind it may be instances, so a
    # run that could not reach them must not exit 0 as if every file was stored.
    return Skipped(path, f"{what}: {exc.strerror or exc}", failed=True)


def collect(paths: Iterable[Path], recursive: bool) -> tuple[list[Path], list[Skipped]]:
    """The files named or found under the directories; FileNotFoundError for a missing path."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    # The same file named twice (or reached through two paths, a link): sent once, and the
    # other names listed as skipped (they were in no record: a script checking each name it
    # passed found one missing, walkthrough 6b). Its device and inode say so with one stat,
    # where resolve() walks every path component.
    seen: dict[tuple[int, int] | Path, Path] = {}
    visited: set[tuple[int, int]] = set()
    for path in paths:
        if path.is_dir():
            if not recursive:
                skipped.append(Skipped(path, "a directory (use -r to walk it)", failed=False))
                continue
            found = _walk(path, visited, skipped) if _first_visit(path, visited) else []
        elif path.is_file():
            found = [path]
        elif path.exists():
            # Named on the command line, as in a walk: opening a FIFO blocked until a writer
            # came (forever, --timeout or not), and a pipe cannot be sent (it is read twice).
            skipped.append(Skipped(path, "not a regular file", failed=False))
            continue
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")
        for item in found:
            key: tuple[int, int] | Path
            try:
                info = os.stat(item)
                key = (info.st_dev, info.st_ino)
            except OSError:
                key = item  # gone or unreadable: probing it says so
            first = seen.get(key)
            if first is None:
                seen[key] = item
                files.append(item)
            else:
                skipped.append(Skipped(item, f"the same file as {first} (sent once)", failed=False))
    return files, skipped


def scan(paths: Iterable[Path], recursive: bool) -> Scan:
    """Probe every file: what can be sent, and what is skipped and why."""
    candidates, skipped = collect(paths, recursive)
    files: list[DicomFile] = []
    for path in candidates:
        try:
            files.append(probe_file(path))
        except NotSendable as exc:
            skipped.append(Skipped(path, str(exc), failed=not exc.skip))
        except OSError as exc:
            skipped.append(Skipped(path, f"cannot read: {exc.strerror or exc}", failed=True))
    return Scan(tuple(files), tuple(skipped))


def contexts_for(files: Sequence[DicomFile]) -> list[ProposedContext]:
    """Per SOP class: one context per compressed transfer syntax found, and one with explicit
    and implicit VR little endian; never compressed and uncompressed syntaxes together.

    An acceptor picks one syntax per context, so files in any other uncompressed syntax (the
    rarer of the two native ones, deflated, big endian) get a context of their own with that
    syntax alone (PS3.8 §9.3.2.2 lets contexts share an abstract syntax): where it is accepted
    they go as they are, elsewhere they are converted to what the main context got. In the
    main context the native syntax of most files comes first, as many acceptors take the
    first they support.
    """
    by_class: dict[str, Counter[str]] = {}
    for f in files:
        by_class.setdefault(f.sop_class_uid, Counter())[f.transfer_syntax] += 1
    contexts: list[ProposedContext] = []
    for sop_class, counts in by_class.items():
        found = [ts for ts, _ in counts.most_common()]
        contexts.extend(ProposedContext(sop_class, (ts,)) for ts in found if is_compressed(ts))
        # Offered even when every file is compressed (the issue asks for it): compressed files
        # are never decompressed, but the context costs little and a peer's answer to it
        # tells the user which syntaxes it takes.
        native = [ts for ts in found if ts in _NATIVE]
        main = (*native, *(ts for ts in _NATIVE if ts not in native))
        contexts.append(ProposedContext(sop_class, main))
        contexts.extend(
            ProposedContext(sop_class, (ts,))
            for ts in found
            if not is_compressed(ts) and ts != main[0]
        )
    return contexts


@frozen
class Batch:
    """The files one association (or one group of parallel ones) carries, with its contexts."""

    contexts: tuple[ProposedContext, ...]
    files: tuple[DicomFile, ...]


def batches(files: Sequence[DicomFile], max_contexts: int = MAX_CONTEXTS) -> list[Batch]:
    """Split into batches of at most `max_contexts` contexts, keeping a SOP class's contexts
    (and so its files) together; first fit, in the order SOP classes first appear."""
    by_class: dict[str, list[DicomFile]] = {}
    for f in files:
        by_class.setdefault(f.sop_class_uid, []).append(f)
    groups: list[tuple[list[ProposedContext], list[DicomFile]]] = []
    for members in by_class.values():
        contexts = contexts_for(members)
        if len(contexts) > max_contexts:
            raise ValueError("one SOP class needs more presentation contexts than allowed")
        for group in groups:
            if len(group[0]) + len(contexts) <= max_contexts:
                group[0].extend(contexts)
                group[1].extend(members)
                break
        else:
            groups.append((list(contexts), list(members)))
    return [Batch(tuple(c), tuple(f)) for c, f in groups]


@frozen
class Choice:
    """How a file goes out: on `context`, as it is or re-encoded in its transfer syntax."""

    context: AcceptedContext
    convert: bool

    @property
    def transfer_syntax(self) -> str:
        return self.context.transfer_syntax


def choose(accepted: Mapping[int, AcceptedContext], info: DicomFile) -> Choice:
    """The accepted context for a file: its own transfer syntax if accepted (sent as it is),
    else explicit or implicit VR little endian for a file we can convert. Raises NotSendable
    with the reason otherwise."""
    mine = [
        c for c in accepted.values() if c.abstract_syntax == info.sop_class_uid and c.we_are_scu
    ]
    for ctx in mine:
        if ctx.transfer_syntax == info.transfer_syntax:
            # An odd-length data set would have to be padded mid-stream: re-encode instead.
            if info.dataset_length % 2 == 0 or info.transfer_syntax == uids.DEFLATED_EXPLICIT_VR_LE:
                # A deflated stream of odd length is sent as it is, with the trailing pad of
                # PS3.5 A.5 (FileSource adds it): it was inflated and converted instead.
                return Choice(ctx, convert=False)
            if ctx.transfer_syntax in _NATIVE and not info.compressed:
                return Choice(ctx, convert=True)
            odd_length = (
                f"the data set has an odd length ({info.dataset_length} bytes), which PS3.5 "
                f"§7.1 forbids, and {'compressed' if info.compressed else 'big endian'} data "
                "is not re-encoded"
            )
            if info.compressed or not any(c.transfer_syntax in _NATIVE for c in mine):
                # Named for what it is: the peer did accept the file's own syntax (a big
                # endian file read "the peer accepted it only in ...", walkthrough 6b).
                raise NotSendable(odd_length, skip=False)
    if not mine:
        raise NotSendable(
            f"the peer accepted no presentation context for SOP class {info.sop_class_uid}",
            skip=False,
        )
    if info.compressed:
        raise NotSendable(
            f"compressed in {info.transfer_syntax}, which the peer did not accept; "
            "compressed files are sent only as they are",
            skip=False,
        )
    for ts in _NATIVE:
        for ctx in mine:
            if ctx.transfer_syntax == ts:
                return Choice(ctx, convert=True)
    raise NotSendable(
        f"the peer accepted SOP class {info.sop_class_uid} only in "
        f"{', '.join(sorted({c.transfer_syntax for c in mine}))}, to which netdicom does not "
        "convert",
        skip=False,
    )
