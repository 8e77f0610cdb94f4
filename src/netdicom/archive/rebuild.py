"""From files to the index: read what the index keeps of a stored file, and reconcile or
rebuild the index from the files of DIR (with a progress callback).

Reading for the index does not decode the data set with pydicom: the file meta is parsed by
hand and the data set walked with the archive's DatasetScanner, which captures the few
top-level values the index keeps and stops once they are behind it (they all sit in groups
0008 to 0020, before any bulk data). Text is decoded per the instance's own Specific
Character Set (archive.charset).
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from netdicom.archive.charset import TEXT_VRS, decode_text, fallback_charset, parse_charset
from netdicom.archive.index import Index, InstanceSummary
from netdicom.archive.matching import COLUMN_BY_TAG, SPECIFIC_CHARACTER_SET, Items, Record, Values
from netdicom.core.datasets import file_damage
from netdicom.core.records import frozen

log = logging.getLogger("netdicom.index")

# Tags the index keeps (archive.matching.COLUMNS) plus the character set that decodes them.
CAPTURE_TAGS: Final = frozenset(COLUMN_BY_TAG) | {SPECIFIC_CHARACTER_SET}
_LAST_TAG: Final = max(CAPTURE_TAGS)
_CHUNK: Final = 16384
_MAX_SEQUENCE_DEPTH: Final = 8

IMPLICIT_VR_LE: Final = "1.2.840.10008.1.2"
EXPLICIT_VR_BE: Final = "1.2.840.10008.1.2.2"
DEFLATED: Final = "1.2.840.10008.1.2.1.99"

Progress = Callable[[int, int], None]


class NotDicom(ValueError):
    """The file is not a DICOM Part 10 file we can index."""


def summary_from_values(
    raw: Mapping[int, bytes], *, path: str, size: int, mtime_ns: int, transfer_syntax: str
) -> InstanceSummary:
    """An InstanceSummary from raw top-level values (as captured by a DatasetScanner)."""
    charset = parse_charset(raw.get(SPECIFIC_CHARACTER_SET))
    if not charset:
        charset = fallback_charset(value for tag, value in raw.items() if _vr(tag) in TEXT_VRS)
    values: dict[int, str] = {}
    for tag, value in raw.items():
        vr = _vr(tag)
        if vr is None:
            continue
        if vr in TEXT_VRS:
            values[tag] = decode_text(value, vr, charset)
        else:
            values[tag] = value.decode("ascii", "replace").strip(" \x00")
    return InstanceSummary(path, size, mtime_ns, transfer_syntax, values)


def _vr(tag: int) -> str | None:
    column = COLUMN_BY_TAG.get(tag)
    return column.vr if column is not None else None


def read_meta(head: bytes) -> tuple[str, int]:
    """(transfer syntax, offset of the data set) from the start of a Part 10 file."""
    if len(head) < 132 or head[128:132] != b"DICM":
        raise NotDicom("no DICM prefix")
    pos = 132
    syntax = ""
    while pos + 8 <= len(head):
        group, element = struct.unpack_from("<HH", head, pos)
        if group != 0x0002:
            break
        vr = head[pos + 4 : pos + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR"):
            (length,) = struct.unpack_from("<L", head, pos + 8)
            start = pos + 12
        else:
            (length,) = struct.unpack_from("<H", head, pos + 6)
            start = pos + 8
        if element == 0x0010:
            syntax = head[start : start + length].decode("ascii", "replace").strip(" \x00")
        pos = start + length
    if not syntax:
        raise NotDicom("no transfer syntax in the file meta")
    return syntax, pos


def read_summary(directory: Path, relative: str) -> InstanceSummary:
    """Read what the index keeps of the file DIR/relative; NotDicom/OSError if it cannot."""
    from netdicom.archive.scan import DatasetError, DatasetScanner

    path = directory / relative
    with open(path, "rb") as f:
        stat = os.fstat(f.fileno())
        head = f.read(_CHUNK)
        syntax, offset = read_meta(head)
        scanner = DatasetScanner(
            implicit_vr=syntax == IMPLICIT_VR_LE,
            little_endian=syntax != EXPLICIT_VR_BE,
            capture=CAPTURE_TAGS,
        )
        inflate = zlib.decompressobj(-zlib.MAX_WBITS) if syntax == DEFLATED else None
        data: bytes = head[offset:]
        try:
            while data and not scanner.passed(_LAST_TAG + 1):
                scanner.feed(inflate.decompress(data) if inflate is not None else data)
                data = f.read(_CHUNK)
        except DatasetError as exc:
            if not scanner.values:
                raise NotDicom(str(exc)) from None
    return summary_from_values(
        scanner.values,
        path=relative,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        transfer_syntax=syntax,
    )


# --- attributes the index has no column for (read from the file on demand) -----------------


def read_attributes(
    directory: Path, relative: str, tags: frozenset[int]
) -> dict[int, Values | Items]:
    """Values of `tags` in the file, decoded (pydicom, per its character set)."""
    from pydicom import dcmread

    ds = dcmread(directory / relative, stop_before_pixels=True)
    apply_fallback_charset(ds)
    result: dict[int, Values | Items] = {}
    for tag in tags:
        if tag in ds:
            result[tag] = element_values(ds[tag])
        else:
            result[tag] = ()
    return result


def apply_fallback_charset(ds: Any) -> None:
    if "SpecificCharacterSet" in ds:
        return
    raws = []
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        if getattr(raw, "VR", None) in TEXT_VRS and isinstance(raw.value, bytes):
            raws.append(raw.value)
    charset = fallback_charset(raws)
    if charset:
        ds.SpecificCharacterSet = list(charset) if len(charset) > 1 else charset[0]


def element_values(element: Any, depth: int = 0) -> Values | Items:
    """A pydicom DataElement as matching values: strings, or items for a sequence."""
    if element.VR == "SQ":
        if depth >= _MAX_SEQUENCE_DEPTH:
            return []
        return [dataset_record(item, depth + 1) for item in element.value]
    value = element.value
    if value is None or value == "" or isinstance(value, bytes | bytearray):
        return ()
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return tuple(str(v) for v in value)
    return (str(value),)


def dataset_record(ds: Any, depth: int = 0) -> Record:
    return {int(elem.tag): element_values(elem, depth) for elem in ds}


# --- reconciling the index with the files -------------------------------------------------------


@frozen
class ReconcileReport:
    added: int
    removed: int
    skipped: int  # files that are not DICOM, or a second file of an indexed SOP instance
    total: int  # instances indexed afterwards


def walk(directory: Path) -> dict[str, tuple[int, int]]:
    """Every candidate file under DIR: relative path -> (size, mtime_ns). Folders and files
    whose name starts with '.' (the index, temporary files) are not part of the archive."""
    found: dict[str, tuple[int, int]] = {}
    stack = [directory]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            log.warning("cannot list %s: %s", folder, exc)
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif entry.is_file(follow_symlinks=False):
                stat = entry.stat(follow_symlinks=False)
                relative = Path(entry.path).relative_to(directory).as_posix()
                found[relative] = (stat.st_size, stat.st_mtime_ns)
    return found


def reconcile(
    index: Index,
    directory: Path,
    progress: Progress | None = None,
    *,
    batch: int = 500,
    copies_expected: bool = False,
) -> ReconcileReport:
    """Make the index hold exactly the files in place: index new or changed files, drop rows
    whose file is gone or no longer reads as a DICOM instance. On an empty index this is a full
    rebuild. Files are only read, never changed or removed."""
    known = index.files()
    on_disk = walk(directory)
    gone = [path for path in known if path not in on_disk]
    removed = index.remove(gone) if gone else 0
    # Oldest first, as serve stored them: the first instance of a patient or study sets its
    # attributes, and the first copy of an instance is the indexed one, as they were before
    # the rebuild (in path order a rebuild could bring back another name, walkthrough 6d).
    todo = sorted(
        (p for p, stat in on_disk.items() if known.get(p) != stat),
        key=lambda p: (on_disk[p][1], p),
    )
    added = skipped = 0
    done = 0
    if progress is not None:
        progress(0, len(todo))
    for start in range(0, len(todo), batch):
        chunk = todo[start : start + batch]
        summaries, unreadable = _read_summaries(directory, chunk, known)
        skipped += len(unreadable)
        summaries, duplicates = _without_duplicates(index, summaries, on_disk, copies_expected)
        skipped += duplicates
        # A changed file the index knows that is not indexed again (unreadable now, or now a
        # second file of another indexed instance): its row describes what the file no longer
        # holds, and a C-FIND would offer an instance a C-GET cannot send.
        kept = {s.path for s in summaries}
        stale = [p for p in chunk if p in known and p not in kept]
        if stale:
            removed += index.remove(stale)
        if summaries:
            index.add_many(summaries)
            added += len(summaries)
        done += len(chunk)
        if progress is not None:
            progress(done, len(todo))
    total = index.counts()["instance"]
    return ReconcileReport(added, removed, skipped, total)


def _read_summaries(
    directory: Path, paths: Iterable[str], known: Mapping[str, tuple[int, int]]
) -> tuple[list[InstanceSummary], list[str]]:
    """The summaries of the files that read as DICOM instances, and the paths of the others."""
    summaries: list[InstanceSummary] = []
    unreadable: list[str] = []
    for relative in paths:
        try:
            summary = read_summary(directory, relative)
            if not summary.values.get(0x00080018, ""):
                raise NotDicom("no SOP Instance UID")
        except (NotDicom, OSError) as exc:
            unreadable.append(relative)
            if relative in known:
                # Indexed before, so a user may ask for it: say why it is no longer offered.
                log.warning(
                    "index: dropped %s, which no longer reads as a DICOM instance (%s); "
                    "the file is left in place",
                    relative,
                    exc,
                )
            else:
                log.debug("not indexed: %s (%s)", relative, exc)
            continue
        damage = file_damage(directory / relative)
        if damage is not None:
            # It reads as an instance, but a retrieve of it would fail: offered by C-FIND, it
            # could never be delivered (a file cut short while serve was down was indexed
            # without a word). Said now, to the admin, not to a failed retrieve later.
            unreadable.append(relative)
            log.warning("index: %s is damaged (%s): not indexed; the file is left in place",
                        relative, damage)  # fmt: skip
            continue
        summaries.append(summary)
    return summaries, unreadable


_NAMED_DUPLICATES = 20  # per batch; beyond, only counted


def _without_duplicates(
    index: Index,
    summaries: Iterable[InstanceSummary],
    on_disk: Mapping[str, tuple[int, int]],
    copies_expected: bool = False,
) -> tuple[list[InstanceSummary], int]:
    # A second file of an indexed SOP instance (kept by a "rename" duplicate policy) stays out:
    # the index keeps the file it already has while that file is in place.
    items = list(summaries)
    uids = [s.values.get(0x00080018, "") for s in items]
    indexed = index.sop_instance_paths([u for u in uids if u])
    kept: list[InstanceSummary] = []
    seen: set[str] = set()
    named = unnamed = 0
    for summary, uid in zip(items, uids, strict=True):
        current = indexed.get(uid)
        if (
            not uid
            or uid in seen
            or (current is not None and current != summary.path and current in on_disk)
        ):
            unnamed += bool(uid) and named >= _NAMED_DUPLICATES
            if uid and named < _NAMED_DUPLICATES:
                named += 1
                # Said by name (it was only counted): a copy kept by --on-duplicate rename is
                # expected, a file dropped in by hand that reuses a UID is worth a look.
                where = current if current is not None else "another file of this run"
                if copies_expected:  # --on-duplicate rename keeps them
                    log.info("not indexed: %s holds %s, indexed as %s", summary.path, uid, where)
                else:
                    # Otherwise one is not expected: left by a store cut short (serve killed
                    # between placing a corrected version and removing the other), or put
                    # there by hand. It stayed unseen at info level (walkthrough 6a).
                    log.warning(
                        "not indexed: %s holds %s, indexed as %s: a second copy of one "
                        "instance (a store cut short, or a copy put in by hand): remove the one "
                        "not wanted",
                        summary.path,
                        uid,
                        where,
                    )
            continue
        seen.add(uid)
        kept.append(summary)
    if unnamed:
        # Beyond the first ones named, counted (6v: "nothing says how many more").
        log.log(
            logging.INFO if copies_expected else logging.WARNING,
            "not indexed: %d more second copies of indexed instances, not named",
            unnamed,
        )
    return kept, len(items) - len(kept)


def open_index(
    directory: Path, progress: Progress | None = None, *, copies_expected: bool = False
) -> tuple[Index, ReconcileReport]:
    """Open DIR's index (rebuilding it when missing or damaged) and reconcile it with the
    files. `copies_expected`: second files of one instance are normal (kept by --on-duplicate
    rename) and logged at info level, else as warnings."""
    index = Index(Path(os.path.realpath(directory)))
    state = index.open()
    if state != "ok":
        log.info("index %s %s: building it from the files", index.path, state)
    report = reconcile(index, directory, progress, copies_expected=copies_expected)
    return index, report


def relative_path(directory: Path, path: Path) -> str:
    """`path` relative to `directory`, as the index keeps it (POSIX separators). A string cut
    when `path` is below `directory` as written (always, for the files serve places): relpath
    costs ~7 µs, and serve asked twice per stored instance."""
    text, prefix = str(path), str(directory).rstrip(os.sep) + os.sep
    if text.startswith(prefix) and os.sep == "/":
        return text[len(prefix) :]
    return Path(os.path.relpath(path, directory)).as_posix()


def index_file(index: Index, path: Path, *, keep_existing: bool = False) -> None:
    """Index the file at `path` (inside the index's directory) now that it is in place.
    `keep_existing`: leave an already indexed SOP instance where it is (a second file of it
    kept by the "rename" duplicate policy)."""
    relative = relative_path(index.directory, path)
    summary = read_summary(index.directory, relative)
    uid = summary.values.get(0x00080018, "")
    if not uid:
        raise NotDicom(f"{relative}: no SOP Instance UID")
    if keep_existing and index.sop_instance_paths([uid]):
        return
    index.add(summary)


def captured_summary(
    directory: Path, path: Path, values: Mapping[int, bytes], transfer_syntax: str
) -> InstanceSummary:
    """The summary of a stored file from the raw top-level values the Storage SCP's scanner
    captured while receiving it (it must capture CAPTURE_TAGS): no second read of the file."""
    stat = path.stat()
    relative = relative_path(directory, path)
    summary = summary_from_values(
        values,
        path=relative,
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        transfer_syntax=transfer_syntax,
    )
    if not summary.values.get(0x00080018, ""):
        raise NotDicom(f"{relative}: no SOP Instance UID")
    return summary
