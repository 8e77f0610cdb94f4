"""The one bridge between DICOM files and the network: what a file holds, and its data set bytes
in the transfer syntax a peer accepted.

Planning a store must not decode whole files, so `probe_file` reads only the preamble, the file
meta information (PS3.10 §7.1, always explicit VR little endian) and the first data-set elements,
with a small parser of its own: it is ~20× faster than a general reader and sees the encoding as
it really is. Anything it does not expect (a sequence before SOP Instance UID, say) is handed to
pydicom. Re-encoding (`encode_dataset`) is pydicom's writer; pydicom is imported only there.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO, Final

from netdicom.core import uids
from netdicom.core.dataset_walk import LONG_VRS, SHORT_VRS, Incomplete, check_complete
from netdicom.core.errors import NetDicomError
from netdicom.core.records import frozen
from netdicom.core.sop_classes import is_compressed

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage (PS3.10 §8)

_ALL_VRS = LONG_VRS | SHORT_VRS
_UNDEFINED = 0xFFFFFFFF
_SOP_CLASS_TAG = 0x00080016
_SOP_INSTANCE_TAG = 0x00080018
# How much of a file the probe reads first; meta plus the first elements almost always fit.
_HEAD_SIZE = 4096
_MAX_META = 1 << 20


class Encoding(Enum):
    """How a data set is actually encoded (PS3.5 §7.1, §A.5)."""

    IMPLICIT_LE = "implicit VR little endian"
    EXPLICIT_LE = "explicit VR little endian"
    EXPLICIT_BE = "explicit VR big endian"
    DEFLATED = "deflated explicit VR little endian"


def encoding_of(transfer_syntax: str) -> Encoding:
    """The encoding a transfer syntax prescribes; encapsulated ones use explicit VR LE."""
    if transfer_syntax == uids.IMPLICIT_VR_LE:
        return Encoding.IMPLICIT_LE
    if transfer_syntax == uids.EXPLICIT_VR_BE:
        return Encoding.EXPLICIT_BE
    if transfer_syntax == uids.DEFLATED_EXPLICIT_VR_LE:
        return Encoding.DEFLATED
    return Encoding.EXPLICIT_LE


class NotSendable(NetDicomError):
    """A file that is not sent: `skip` is True for files that are not instances at all
    (not DICOM, a DICOMDIR), False for DICOM files that are broken (listed as failures)."""

    def __init__(self, message: str, *, skip: bool) -> None:
        super().__init__(message)
        self.skip = skip


@frozen
class DicomFile:
    """What a store needs to know about a Part 10 file, read without decoding it."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    dataset_offset: int  # where the data set starts: after preamble, DICM and file meta
    dataset_length: int  # bytes from there to the end of the file
    # (size, mtime, ctime, inode, device) when probed: `recheck` trusts a file whose stamp is
    # unchanged, and probes again only one that was written, replaced or moved since.
    stamp: tuple[int, int, int, int, int] | None = None

    @property
    def compressed(self) -> bool:
        return is_compressed(self.transfer_syntax)


def _text(value: bytes) -> str:
    return value.decode("ascii", "replace").rstrip("\x00 ").strip()


@frozen
class _Meta:
    sop_class_uid: str
    sop_instance_uid: str
    transfer_syntax: str
    end: int


def _headerless(head: bytes) -> str | None:
    """What a file that holds DICOM without the Part 10 header is (None: not DICOM as far as
    its first element tells). Such files come from old tools and from raw data set dumps."""
    if len(head) < 8:
        return None
    vr = head[4:6]
    explicit = vr in SHORT_VRS or vr in LONG_VRS
    group, element = struct.unpack_from("<HH", head)
    if group == 0x0002 and element <= 0x0002 and explicit:
        return "a DICOM file without the 128-byte preamble and 'DICM'"
    (implicit_length,) = struct.unpack_from("<I", head, 4)
    if group == 0x0008 and element <= 0x0018 and (explicit or implicit_length <= 1024):
        return "a DICOM data set without the Part 10 header (preamble, 'DICM', file meta)"
    # Big endian (explicit VR: the only big endian encoding there is); it was taken for no
    # DICOM at all and skipped, where its little endian twin failed (walkthrough 6b).
    group, element = struct.unpack_from(">HH", head)
    if group == 0x0008 and element <= 0x0018 and explicit:
        return (
            "a big endian DICOM data set without the Part 10 header (preamble, 'DICM', file meta)"
        )
    return None


def parse_meta(head: bytes) -> _Meta | None:
    """The file meta of a Part 10 file starting with `head`, or None when more bytes are
    needed. Raises NotSendable when it is not a Part 10 file or the meta is malformed."""
    if len(head) < 132:
        if len(head) < _HEAD_SIZE:
            raise NotSendable("not a DICOM file (shorter than the 132-byte preamble)", skip=True)
        return None
    if head[128:132] != b"DICM":
        headerless = _headerless(head)
        if headerless is not None:
            # DICOM all the same: failed, not skipped, so that a run that left it exits 1.
            raise NotSendable(
                f"{headerless} (PS3.10 7.1): not sent; rewrite it as a Part 10 file first, "
                "e.g. with dcmtk's dcmconv",
                skip=False,
            )
        raise NotSendable("not a DICOM Part 10 file (no 'DICM' after the preamble)", skip=True)
    values: dict[int, bytes] = {}
    pos = 132
    while True:
        if pos + 8 > len(head):
            return None
        group, element = struct.unpack_from("<HH", head, pos)
        if group != 0x0002:
            break
        vr = head[pos + 4 : pos + 6]
        if vr in LONG_VRS:
            if pos + 12 > len(head):
                return None
            (length,) = struct.unpack_from("<I", head, pos + 8)
            start = pos + 12
        elif vr in SHORT_VRS:
            (length,) = struct.unpack_from("<H", head, pos + 6)
            start = pos + 8
        else:
            raise NotSendable(
                f"file meta element (0002,{element:04X}) is not explicit VR little endian "
                "(PS3.10 §7.1)",
                skip=False,
            )
        if length == _UNDEFINED or start + length > _MAX_META:
            raise NotSendable("file meta information is malformed", skip=False)
        if start + length > len(head):
            return None
        values[element] = head[start : start + length]
        pos = start + length
    missing = [
        name
        for el, name in ((2, "SOP class"), (3, "SOP instance"), (0x10, "TS"))
        if el not in values
    ]
    if missing:
        raise NotSendable(f"file meta lacks Media Storage {', '.join(missing)} UID", skip=False)
    return _Meta(_text(values[2]), _text(values[3]), _text(values[0x10]), pos)


def detect_encoding(data: bytes) -> Encoding | None:
    """The encoding of a data set from its first element header (None: cannot tell).

    Data sets start with a low group (0x0008 almost always); in explicit VR the bytes after
    the tag are two upper-case letters forming a VR."""
    if len(data) < 8:
        return None
    group_le = data[0] | data[1] << 8
    group_be = data[0] << 8 | data[1]
    explicit = data[4:6] in _ALL_VRS
    if group_le > 0x00FF >= group_be and explicit:
        return Encoding.EXPLICIT_BE
    if explicit:
        return Encoding.EXPLICIT_LE
    if group_le <= 0x7FE0:
        return Encoding.IMPLICIT_LE
    return None


def _first_uids(data: bytes, encoding: Encoding) -> dict[int, str] | None:
    """SOP Class and SOP Instance UIDs from the start of a data set; None when the elements
    before them are not simple (sequences, undefined lengths) or lie beyond `data`."""
    found: dict[int, str] = {}
    pos = 0
    end = len(data)
    big = encoding is Encoding.EXPLICIT_BE
    explicit = encoding is not Encoding.IMPLICIT_LE
    tag_fmt, short_fmt, long_fmt = (">HH", ">H", ">I") if big else ("<HH", "<H", "<I")
    while pos + 8 <= end:
        group, element = struct.unpack_from(tag_fmt, data, pos)
        tag = group << 16 | element
        if tag > _SOP_INSTANCE_TAG:
            break
        if explicit:
            vr = data[pos + 4 : pos + 6]
            if vr in LONG_VRS:
                if pos + 12 > end:
                    return None
                (length,) = struct.unpack_from(long_fmt, data, pos + 8)
                start = pos + 12
            elif vr in SHORT_VRS:
                (length,) = struct.unpack_from(short_fmt, data, pos + 6)
                start = pos + 8
            else:
                return None
            if vr == b"SQ":
                return None
        else:
            (length,) = struct.unpack_from("<I", data, pos + 4)
            start = pos + 8
        if length == _UNDEFINED or start + length > end:
            return None
        if tag in (_SOP_CLASS_TAG, _SOP_INSTANCE_TAG):
            found[tag] = _text(data[start : start + length])
        pos = start + length
    else:
        return None
    return found


def _uids_with_pydicom(fp: BinaryIO, offset: int, encoding: Encoding) -> dict[int, str]:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset

    # The open file, not its path: a re-check before sending must judge the bytes it sends.
    fp.seek(offset)
    raw = fp.read()
    if encoding is Encoding.DEFLATED:
        raw = zlib.decompress(raw, -zlib.MAX_WBITS)
    buffer: Any = DicomBytesIO(raw)
    ds = read_dataset(
        buffer,
        encoding is Encoding.IMPLICIT_LE,
        encoding is not Encoding.EXPLICIT_BE,
        stop_when=lambda tag, vr, length: tag > _SOP_INSTANCE_TAG,
    )
    found: dict[int, str] = {}
    for tag in (_SOP_CLASS_TAG, _SOP_INSTANCE_TAG):
        if tag in ds:
            found[tag] = str(ds[tag].value or "").strip()
    return found


def probe_file(path: Path) -> DicomFile:
    """Read a file's meta and the first data-set elements; check them against each other.

    Raises NotSendable (skip=True) for non-DICOM files and DICOMDIRs, NotSendable (skip=False)
    when the meta's UIDs differ from the data set's or its transfer syntax is not the encoding
    found, and OSError when the file cannot be read.
    """
    with open(path, "rb") as fp:
        status = os.fstat(fp.fileno())
        return _probe_open(fp, path, status.st_size, _stamp(status))


def file_damage(path: Path) -> str | None:
    """Why the file at `path` cannot be sent as it is (not DICOM, cut short, its meta and data
    set at odds: what probe_file finds), or None for a whole file. The archive asks it of a
    copy it might keep or index, as a retrieve would before sending."""
    try:
        probe_file(path)
    except NotSendable as exc:
        return str(exc)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _stamp(status: os.stat_result) -> tuple[int, int, int, int, int]:
    return (
        status.st_size,
        status.st_mtime_ns,
        status.st_ctime_ns,
        status.st_ino,
        status.st_dev,
    )


def _probe_open(
    fp: BinaryIO, path: Path, size: int, stamp: tuple[int, int, int, int, int] | None = None
) -> DicomFile:
    """probe_file on a file already open (read from its start; `size` is its length)."""
    fp.seek(0)
    head = fp.read(_HEAD_SIZE)
    meta = parse_meta(head)
    while meta is None:
        more = fp.read(len(head))
        if not more:
            raise NotSendable("file meta information is truncated", skip=False)
        head += more
        if len(head) > _MAX_META:
            raise NotSendable("file meta information is too long", skip=False)
        meta = parse_meta(head)
    if meta.sop_class_uid == DICOMDIR_SOP_CLASS:
        raise NotSendable("a DICOMDIR (media directory), not an instance", skip=True)
    declared = encoding_of(meta.transfer_syntax)
    data = head[meta.end :]
    if declared is Encoding.DEFLATED:
        data = _inflate_start(fp, meta.end)
    elif len(data) < 1024 and meta.end + len(data) < size:
        data += fp.read(_HEAD_SIZE)
    info = _check(fp, path, meta, declared, data, size, stamp)
    if declared is not Encoding.DEFLATED:
        # A deflated data set is checked whole only by inflating it: left to the peer.
        try:
            check_complete(
                fp,
                meta.end,
                data,
                size,
                explicit=declared is not Encoding.IMPLICIT_LE,
                big_endian=declared is Encoding.EXPLICIT_BE,
                encapsulated=is_compressed(meta.transfer_syntax),
            )
        except Incomplete as exc:
            raise NotSendable(str(exc), skip=False) from None
    return info


def _inflate_start(fp: BinaryIO, offset: int) -> bytes:
    fp.seek(offset)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        return inflater.decompress(fp.read(65536), 65536)
    except zlib.error as exc:
        raise NotSendable(
            f"transfer syntax is deflated but the data set does not inflate: {exc}", skip=False
        ) from None


# Every transfer syntax PS3.5 defines (Annex A) has a UID under this root; private ones do not.
_DICOM_TRANSFER_SYNTAXES: Final = "1.2.840.10008.1.2"


def _check(
    fp: BinaryIO,
    path: Path,
    meta: _Meta,
    declared: Encoding,
    data: bytes,
    size: int,
    stamp: tuple[int, int, int, int, int] | None,
) -> DicomFile:
    if not meta.transfer_syntax:
        raise NotSendable("file meta has an empty Transfer Syntax UID", skip=False)
    if not meta.transfer_syntax.startswith(_DICOM_TRANSFER_SYNTAXES):
        # Its encoding cannot be known: it was walked as a compressed one and reported as
        # "Pixel Data is native, but the transfer syntax encapsulates it" (walkthrough 6b).
        # (A prefix, not pydicom's list: importing pydicom here cost `store` 0.25 s.)
        raise NotSendable(
            f"its transfer syntax {meta.transfer_syntax} is not one DICOM defines (PS3.5 "
            "Annex A; a private one?): netdicom cannot check or convert it",
            skip=False,
        )
    length = size - meta.end
    if length == 0:
        raise NotSendable("the file holds no data set after its meta information", skip=False)
    found = detect_encoding(data)
    expected = Encoding.EXPLICIT_LE if declared is Encoding.DEFLATED else declared
    if found is not None and found is not expected:
        raise NotSendable(
            f"file meta says {meta.transfer_syntax} ({declared.value}) but the data set is "
            f"encoded in {found.value}",
            skip=False,
        )
    uids_found = _first_uids(data, expected) if found is not None else None
    if uids_found is None:
        try:
            uids_found = _uids_with_pydicom(fp, meta.end, declared)
        except Exception as exc:
            raise NotSendable(f"cannot read the data set: {exc}", skip=False) from None
    for tag, name, value in (
        (_SOP_CLASS_TAG, "SOP Class UID", meta.sop_class_uid),
        (_SOP_INSTANCE_TAG, "SOP Instance UID", meta.sop_instance_uid),
    ):
        actual = uids_found.get(tag)
        if actual is None:
            raise NotSendable(f"the data set has no {name} (0008,{tag & 0xFFFF:04X})", skip=False)
        if actual != value:
            # Which one is right cannot be told from here (an anonymiser that rewrote one of
            # them?): the file is fixed first, as a peer would store the data set's UID.
            raise NotSendable(
                f"file meta {name} {value} differs from the data set's {actual}: fix the file "
                "(the data set's UID is what a peer stores; rewrite the meta to match, e.g. "
                "with dcmtk's dcmconv, or correct the data set) and send it again",
                skip=False,
            )
    return DicomFile(
        path=path,
        sop_class_uid=meta.sop_class_uid,
        sop_instance_uid=meta.sop_instance_uid,
        transfer_syntax=meta.transfer_syntax,
        dataset_offset=meta.end,
        dataset_length=length,
        stamp=stamp,
    )


class FileChanged(NotSendable):
    """A file that is no longer what planning found: rewritten, cut short or replaced by
    another instance between the probe and its turn to be sent."""

    def __init__(self, message: str) -> None:
        super().__init__(message, skip=False)


_PLANNED = (
    ("sop_class_uid", "SOP Class UID"),
    ("sop_instance_uid", "SOP Instance UID"),
    ("transfer_syntax", "Transfer Syntax UID"),
    ("dataset_offset", "data set offset"),
    ("dataset_length", "data set length"),
)


def recheck(info: DicomFile, fp: BinaryIO, size: int, status: os.stat_result | None = None) -> None:
    """Probe the open file `fp` again; raise FileChanged unless it is what `info` says.

    Planning probes every file long before its turn (a large run takes minutes): a file cut
    short since then would end mid-message and cost the association, and one replaced by
    another instance would go out under the planned SOP Instance UID and length. The probe is
    repeated on the descriptor the data set is then read from, so what is checked is what is
    sent (short of a change in place during the send, which FileSource catches if it shrinks).
    When `status` (that descriptor's fstat) shows the size, times, inode and device of the
    probe, the file was not touched since and is not probed again. (Timestamps are as fine as
    the file system keeps them: a same-size rewrite within the same tick as the probe would
    pass; nothing short of reading every byte again closes that.)
    """
    if status is not None and info.stamp is not None and _stamp(status) == info.stamp:
        # Not written, replaced or moved since the probe (one fstat; a full probe again
        # was a third of the sender's CPU on 2 KB instances).
        return
    try:
        now = _probe_open(fp, info.path, size)
    except NotSendable as exc:
        raise FileChanged(f"changed since it was checked: {exc}") from None
    differences = [
        f"{name} {getattr(info, attr)} is now {getattr(now, attr)}"
        for attr, name in _PLANNED
        if getattr(info, attr) != getattr(now, attr)
    ]
    if differences:
        raise FileChanged(f"changed since it was checked: {'; '.join(differences)}")


class FileSource:
    """A data set streamed from disk as it is (DatasetSource: `length`, `read(n)`, and
    `readinto(buffer)`, which reads straight into the buffer the association sends from).

    `FileSource.checked(info)` probes the open file again first (see `recheck`). A file that
    ends before `length` bytes raises FileChanged: the message cannot be completed."""

    def __init__(self, info: DicomFile, *, check: bool = False) -> None:
        # Unbuffered: each read is one system call into the caller's buffer, no copy.
        # A deflated data set of odd length goes out with the one 00H byte PS3.5 A.5 puts
        # after the deflated bit stream (the receiver's inflater stops at the stream's end);
        # any other odd-length data set is never sent as it is (planning converts it).
        self._pad = int(
            info.transfer_syntax == uids.DEFLATED_EXPLICIT_VR_LE and info.dataset_length % 2 == 1
        )
        self._fp = open(info.path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        try:
            if check:
                status = os.fstat(self._fp.fileno())
                recheck(info, self._fp, status.st_size, status)
            self._fp.seek(info.dataset_offset)
        except BaseException:
            self._fp.close()
            raise
        self._file_length = info.dataset_length
        self.length = info.dataset_length + self._pad
        self.sent = 0

    @classmethod
    def checked(cls, info: DicomFile) -> FileSource:
        """Open the file and check it is still what planning found (FileChanged if not)."""
        return cls(info, check=True)

    def read(self, size: int) -> bytes:
        if self.sent >= self._file_length and self._pad and size:
            self._pad, self.sent = 0, self.sent + 1
            return b"\x00"
        piece = self._fp.read(min(size, self._file_length - self.sent)) or b""
        self._count(len(piece), size)
        return piece

    def readinto(self, buffer: memoryview) -> int:
        if self.sent >= self._file_length and self._pad and len(buffer):
            buffer[0] = 0
            self._pad, self.sent = 0, self.sent + 1
            return 1
        count = self._fp.readinto(buffer[: self._file_length - self.sent]) or 0
        self._count(count, len(buffer))
        return count

    def _count(self, count: int, asked: int) -> None:
        if count == 0 and asked and self.sent < self._file_length:
            # Cut short while being sent, after the check: part of the message is out.
            raise FileChanged(
                f"changed while it was being sent: its data set ended after {self.sent} of "
                f"{self.length} bytes"
            )
        self.sent += count

    def close(self) -> None:
        self._fp.close()


def read_checked(info: DicomFile) -> bytes:
    """The whole file, read at once and checked to be what planning found (FileChanged if
    not): converting it then reads these bytes, never the path again."""
    with open(info.path, "rb") as fp:
        status = os.fstat(fp.fileno())
        data = fp.read()
    recheck(info, io.BytesIO(data), len(data), status if len(data) == status.st_size else None)
    return data


# -- re-encoding -----------------------------------------------------------------------------

_SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def _swap_to_little(ds: Any) -> None:
    """Byte-swap the values pydicom keeps raw (OW/OF/OL/OD/OV) of a big-endian data set.

    pydicom decodes numbers and text, but leaves these as bytes in their original order.
    UN values are copied as they are: PS3.5 6.2.2 says they are never byte-swapped (their
    bytes are little endian, implicit VR, whatever the transfer syntax)."""
    for element in ds:
        vr = element.VR
        if vr == "SQ":
            for item in element.value or ():
                _swap_to_little(item)
        elif vr in _SWAP_WIDTH and element.value:
            width = _SWAP_WIDTH[vr]
            raw = bytes(element.value)
            if len(raw) % width:
                raise NotSendable(
                    f"{element.tag} ({vr}) has a length not a multiple of {width}", skip=False
                )
            swapped = bytearray(len(raw))
            for i in range(width):
                swapped[i::width] = raw[width - 1 - i :: width]
            element.value = bytes(swapped)


def encode_dataset(info: DicomFile, transfer_syntax: str, *, check: bool = False) -> bytes:
    """The file's data set re-encoded in implicit or explicit VR little endian, data-set group
    lengths dropped (PS3.5 §7.2 makes them optional). Raises NotSendable when it cannot.

    `check`: the file is first read whole and checked to be what planning found (FileChanged
    if not; `read_checked`), and those bytes are decoded: the instance converted is the one
    the C-STORE-RQ names."""
    if transfer_syntax not in (uids.IMPLICIT_VR_LE, uids.EXPLICIT_VR_LE):
        raise NotSendable(f"cannot encode a data set in {transfer_syntax}", skip=False)
    if info.compressed:
        raise NotSendable(
            f"compressed ({info.transfer_syntax}); netdicom sends compressed files only as "
            "they are and the peer accepted no context in that transfer syntax",
            skip=False,
        )
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    source: Path | io.BytesIO = io.BytesIO(read_checked(info)) if check else info.path
    try:
        ds = dcmread(source)
        if encoding_of(info.transfer_syntax) is Encoding.EXPLICIT_BE:
            _swap_to_little(ds)
        _drop_group_lengths(ds)
        buffer = DicomBytesIO()
        buffer.is_little_endian = True
        buffer.is_implicit_VR = transfer_syntax == uids.IMPLICIT_VR_LE
        write_dataset(buffer, ds)
        encoded = buffer.getvalue()
    except NotSendable:
        raise
    except Exception as exc:
        raise NotSendable(f"cannot re-encode the data set: {exc}", skip=False) from None
    if len(encoded) % 2:
        raise NotSendable("re-encoded data set has an odd length", skip=False)
    return encoded


def _drop_group_lengths(ds: Any) -> None:
    for tag in [t for t in ds.keys() if t.element == 0]:  # noqa: SIM118 - iterating yields elements
        del ds[tag]
    for element in ds:
        if element.VR == "SQ":
            for item in element.value or ():
                _drop_group_lengths(item)
