"""The completeness walk: a data set must end where its file ends (netdicom.core.dataset_walk),
and probe_file refuses a file that does not (it would be sent damaged)."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from netdicom.core.dataset_walk import Incomplete, check_complete
from netdicom.core.datasets import NotSendable, probe_file
from tests.core.test_datasets import _write_big_endian
from tests.dicomfiles import make_dataset, write_instance

ENCODINGS = [str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian), str(ExplicitVRBigEndian)]


def _check(data: bytes, *, explicit: bool = True, big_endian: bool = False, head: int = 64) -> None:
    """Walk `data` as a whole file whose data set starts at 0, the probe holding `head` bytes."""
    check_complete(
        io.BytesIO(data), 0, data[:head], len(data), explicit=explicit, big_endian=big_endian
    )


def _element(
    group: int, element: int, vr: bytes, value: bytes, *, undefined: bool = False
) -> bytes:
    length = 0xFFFFFFFF if undefined else len(value)
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT"):
        return struct.pack("<HH2sHI", group, element, vr, 0, length) + value
    return struct.pack("<HH2sH", group, element, vr, length) + value


def _item(body: bytes, *, undefined: bool = False) -> bytes:
    if undefined:
        return struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + body + _delimiter(0xE00D)
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body


def _delimiter(element: int) -> bytes:
    return struct.pack("<HHI", 0xFFFE, element, 0)


# An explicit VR LE data set with a sequence of undefined length holding an item of undefined
# length, then pixel data: the layouts of PS3.5 §7.5 the walk must step through.
NESTED = (
    _element(0x0008, 0x0018, b"UI", b"1.2.3.4\x00")
    + _element(
        0x0008,
        0x1140,
        b"SQ",
        _item(_element(0x0008, 0x1155, b"UI", b"1.2.3.5\x00"), undefined=True)
        + _item(_element(0x0008, 0x1155, b"UI", b"1.2.3.6\x00"))
        + _delimiter(0xE0DD),
        undefined=True,
    )
    + _element(0x7FE0, 0x0010, b"OW", bytes(4096))
)


def test_a_complete_nested_data_set_passes() -> None:
    for head in (8, 64, len(NESTED)):  # whatever the probe already holds
        _check(NESTED, head=head)


def _implicit(group: int, element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", group, element, len(value)) + value


# A UN of undefined length holds a sequence whose items stay in implicit VR (PS3.5 6.2.2):
# read as explicit VR, the 20300-byte length below spells "LO" and a huge short element.
UN_SEQUENCE = (
    _element(0x0009, 0x0010, b"LO", b"ACME")
    + _element(
        0x0009,
        0x1010,
        b"UN",
        _item(_implicit(0x0009, 0x1002, bytes(20300)), undefined=True) + _delimiter(0xE0DD),
        undefined=True,
    )
    + _element(0x7FE0, 0x0010, b"OW", bytes(64))
)


def test_a_un_sequence_is_walked_in_implicit_vr() -> None:
    # Was "the file is truncated: element (0009,1002) declares 268435456 bytes".
    _check(UN_SEQUENCE)
    with pytest.raises(Incomplete, match="truncated"):
        _check(UN_SEQUENCE[:-70])


@pytest.mark.parametrize("cut", [1, 2, 3000, 4096, 4100, len(NESTED) - 20])
def test_a_data_set_cut_anywhere_is_incomplete(cut: int) -> None:
    with pytest.raises(Incomplete, match=r"truncated|runs past|delimiter"):
        _check(NESTED[:-cut])


def test_bytes_after_the_last_element_are_reported() -> None:
    with pytest.raises(Incomplete, match="needs 8 bytes, 3 are left"):
        _check(NESTED + b"\x00\x01\x02")


def test_pixel_data_cut_short_names_the_element() -> None:
    with pytest.raises(Incomplete, match=r"\(7FE0,0010\) declares 4096 bytes, 4000 are left"):
        _check(NESTED[:-96])


def test_encapsulated_pixel_data_needs_its_delimiter() -> None:
    frames = _element(0x0008, 0x0018, b"UI", b"1.2.3.4\x00") + _element(
        0x7FE0,
        0x0010,
        b"OB",
        _item(b"") + _item(b"\xff\xd8" + bytes(100) + b"\xff\xd9") + _delimiter(0xE0DD),
        undefined=True,
    )
    _check(frames)
    with pytest.raises(Incomplete, match="sequence delimiter"):
        _check(frames[:-8])


def test_an_unknown_vr_gives_no_verdict() -> None:
    # A VR the walk does not know: it cannot tell the header's layout, so the peer judges.
    data = _element(0x0008, 0x0018, b"UI", b"1.2\x00") + b"\x09\x00\x10\x00ZZ\x04\x00abcd"
    _check(data + b"garbage")


def test_an_item_overrunning_its_sequence_is_incomplete() -> None:
    sequence = _item(_element(0x0008, 0x1155, b"UI", b"1.2.3.5\x00"))
    broken = _element(0x0008, 0x1140, b"SQ", sequence[:-4], undefined=True)
    with pytest.raises(Incomplete):
        _check(broken)


@pytest.mark.parametrize("ts", ENCODINGS)
def test_files_written_by_pydicom_pass_and_fail_when_cut(tmp_path: Path, ts: str) -> None:
    ds = make_dataset(rows=64, columns=64)
    referenced = Dataset()
    referenced.ReferencedSOPInstanceUID = "1.2.3.4"
    ds.ReferencedImageSequence = Sequence([referenced, referenced])
    ds.DataSetTrailingPadding = b"\x00" * 16  # (FFFC,FFFC): an element after the pixel data
    if ts == ExplicitVRBigEndian:
        path = _write_big_endian(tmp_path / "whole.dcm", ds)
    else:
        path = write_instance(tmp_path / "whole.dcm", ds, ts)
    assert probe_file(path).dataset_length > 8192
    whole = path.read_bytes()
    for cut in (1, 16, 100, 5000):
        cut_path = tmp_path / f"cut{cut}.dcm"
        cut_path.write_bytes(whole[:-cut])
        with pytest.raises(NotSendable) as info:
            probe_file(cut_path)
        assert not info.value.skip  # a broken instance: listed as failed, not skipped
        assert "truncated" in str(info.value) or "runs past" in str(info.value)


def test_compressed_file_cut_short_is_refused(tmp_path: Path) -> None:
    ds = make_dataset(rows=8, columns=8)
    ds.PixelData = encapsulate([b"\xff\xd8" + bytes(200) + b"\xff\xd9"])
    ds["PixelData"].VR = "OB"
    path = write_instance(tmp_path / "jpeg.dcm", ds, str(JPEGBaseline8Bit))
    assert probe_file(path).compressed
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(NotSendable, match="truncated"):
        probe_file(path)


def test_pixel_data_encoding_must_agree_with_the_transfer_syntax(tmp_path: Path) -> None:
    # PS3.5 A.4: encapsulated Pixel Data in the encapsulated syntaxes, native elsewhere. A meta
    # naming the wrong one passed; serve archived it and a later C-GET failed at dcmtk.
    native_as_jpeg = _relabel(write_instance(tmp_path / "a.dcm", make_dataset()), JPEGBaseline8Bit)
    with pytest.raises(NotSendable, match="Pixel Data is native") as info:
        probe_file(native_as_jpeg)
    assert not info.value.skip
    ds = make_dataset(rows=8, columns=8)
    ds.PixelData = encapsulate([b"\xff\xd8" + bytes(200) + b"\xff\xd9"])
    ds["PixelData"].VR = "OB"
    jpeg = write_instance(tmp_path / "b.dcm", ds, str(JPEGBaseline8Bit))
    jpeg_as_explicit = _relabel(jpeg, ExplicitVRLittleEndian)
    with pytest.raises(NotSendable, match="Pixel Data is encapsulated"):
        probe_file(jpeg_as_explicit)
    # Each as it should be passes.
    assert probe_file(write_instance(tmp_path / "c.dcm", make_dataset())).dataset_length > 0
    assert probe_file(write_instance(tmp_path / "d.dcm", ds, str(JPEGBaseline8Bit))).compressed


def _relabel(path: Path, transfer_syntax: str) -> Path:
    """The file with its meta naming `transfer_syntax`, its data set bytes unchanged (pydicom
    will not write native Pixel Data under a compressed syntax)."""
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    meta = dcmread(path, stop_before_pixels=True).file_meta
    body = path.read_bytes()[probe_file(path).dataset_offset :]
    meta.TransferSyntaxUID = transfer_syntax
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_file_meta_info(buffer, meta)
    path.write_bytes(bytes(128) + b"DICM" + buffer.getvalue() + body)
    return path
