"""The incremental data set scanner against data sets pydicom encodes, fed in every split."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

from netdicom.archive.scan import DatasetError, DatasetScanner, LimitExceeded
from netdicom.services.store_scp import _dictionary_vr

SOP_CLASS = 0x00080016
SOP_INSTANCE = 0x00080018
PATIENT_ID = 0x00100020
SERIES = 0x0020000E
CAPTURE = frozenset({SOP_CLASS, SOP_INSTANCE, PATIENT_ID, SERIES})


def encode(ds: Dataset, *, implicit: bool, little: bool = True) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = implicit
    fp.is_little_endian = little
    write_dataset(fp, ds)
    return fp.getvalue()


def nested(depth: int) -> Dataset:
    """A data set whose Referenced Series Sequence nests `depth` levels."""
    inner = Dataset()
    inner.SeriesInstanceUID = "1.2.3"
    for _ in range(depth):
        outer = Dataset()
        outer.ReferencedSeriesSequence = Sequence([inner])
        inner = outer
    return inner


def sample(*, undefined_lengths: bool = False) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = "1.2.3.4.5"
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3.9"
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.ReferencedImageSequence = Sequence([item, Dataset()])
    ds.PatientID = "PAT 7"
    ds.SeriesInstanceUID = "1.2.3.4.6"
    ds.add_new(0x00091010, "LO", "private")
    ds.add_new(0x7FE00010, "OB", bytes(range(256)) * 4)
    if undefined_lengths:
        ds.ReferencedImageSequence.is_undefined_length = True
        for entry in ds.ReferencedImageSequence:
            entry.is_undefined_length_sequence_item = True
    return ds


def scan(data: bytes, pieces: list[int], **kwargs: object) -> DatasetScanner:
    scanner = DatasetScanner(capture=CAPTURE, vr_lookup=_dictionary_vr, **kwargs)  # type: ignore[arg-type]
    pos = 0
    for size in pieces:
        scanner.feed(memoryview(data)[pos : pos + size])
        pos += size
    scanner.feed(data[pos:])
    scanner.finish()
    return scanner


ENCODINGS = [
    {"implicit_vr": True, "little_endian": True},
    {"implicit_vr": False, "little_endian": True},
    {"implicit_vr": False, "little_endian": False},
]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("undefined", [False, True])
@pytest.mark.parametrize("step", [1, 3, 7, 12, 100, 1 << 20])
def test_captures_top_level_values_whatever_the_split(
    encoding: dict[str, bool], undefined: bool, step: int
) -> None:
    data = encode(
        sample(undefined_lengths=undefined),
        implicit=encoding["implicit_vr"],
        little=encoding["little_endian"],
    )
    scanner = scan(data, [step] * (len(data) // step), **encoding)
    assert scanner.values[SOP_INSTANCE] == b"1.2.3.4.5\x00"
    assert scanner.values[PATIENT_ID] == b"PAT 7 "
    assert scanner.values[SERIES] == b"1.2.3.4.6\x00"
    assert scanner.depth_seen == 1
    assert scanner.offset == len(data)


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12))
def test_any_split_gives_the_same_result(cuts: list[int]) -> None:
    data = encode(sample(undefined_lengths=True), implicit=False)
    points = sorted({c % len(data) for c in cuts})
    pieces = [b - a for a, b in zip([0, *points], points, strict=False)]
    scanner = scan(data, pieces, implicit_vr=False)
    assert scanner.values[SOP_INSTANCE] == b"1.2.3.4.5\x00"


def test_passed_tells_when_an_element_can_no_longer_come() -> None:
    data = encode(sample(), implicit=False)
    scanner = DatasetScanner(implicit_vr=False, capture=CAPTURE)
    scanner.feed(data[:40])
    assert not scanner.passed(SOP_INSTANCE + 1)
    scanner.feed(data[40:])
    assert scanner.passed(SOP_INSTANCE + 1)
    assert SOP_INSTANCE in scanner.values


@pytest.mark.parametrize("implicit", [True, False])
def test_nesting_depth_is_capped(implicit: bool) -> None:
    ok = encode(nested(8), implicit=implicit)
    assert scan(ok, [], implicit_vr=implicit, max_depth=8).depth_seen == 8
    deep = encode(nested(9), implicit=implicit)
    with pytest.raises(LimitExceeded, match="deeper than 8"):
        scan(deep, [], implicit_vr=implicit, max_depth=8)


def test_encapsulated_pixel_data_fragments_are_skipped() -> None:
    from pydicom.encaps import encapsulate

    ds = sample()
    ds.PixelData = encapsulate([b"\xff\xd8" + bytes(100) + b"\xff\xd9", bytes(50)])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    data = encode(ds, implicit=False)
    scanner = scan(data, [5] * 100, implicit_vr=False)
    assert scanner.values[SOP_INSTANCE] == b"1.2.3.4.5\x00"


@pytest.mark.parametrize("pieces", [[64] * 100, []], ids=["small pieces", "one piece"])
def test_pixel_data_must_be_encoded_as_the_transfer_syntax_says(pieces: list[int]) -> None:
    # PS3.5 A.4: serve archived fragments received in explicit VR LE (and native pixels in
    # JPEG); a later C-GET of such a file failed at dcmtk and lost the good instances too.
    from pydicom.encaps import encapsulate

    native = encode(sample(), implicit=False)
    assert SOP_INSTANCE in scan(native, pieces, implicit_vr=False, encapsulated=False).values
    with pytest.raises(DatasetError, match="Pixel Data is native"):
        scan(native, pieces, implicit_vr=False, encapsulated=True)
    ds = sample()
    ds.PixelData = encapsulate([b"\xff\xd8" + bytes(100) + b"\xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    fragments = encode(ds, implicit=False)
    assert SOP_INSTANCE in scan(fragments, pieces, implicit_vr=False, encapsulated=True).values
    with pytest.raises(DatasetError, match="Pixel Data is encapsulated"):
        scan(fragments, pieces, implicit_vr=False, encapsulated=False)


def test_undefined_length_un_is_read_as_an_implicit_sequence() -> None:
    # (0009,1001) UN, undefined length, holding one item with (0008,0018) in implicit VR.
    item_body = b"\x08\x00\x18\x00\x04\x00\x00\x001.2\x00"
    item = b"\xfe\xff\x00\xe0" + len(item_body).to_bytes(4, "little") + item_body
    data = (
        b"\x09\x00\x01\x10UN\x00\x00\xff\xff\xff\xff"
        + item
        + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
        + b"\x10\x00\x20\x00LO\x02\x00P1"
    )
    scanner = scan(data, [3] * 20, implicit_vr=False)
    assert scanner.values == {PATIENT_ID: b"P1"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x08\x00\x18\x00\x01\x02\x04\x001.2\x00", "invalid VR"),
        (b"\xfe\xff\x00\xe0\x00\x00\x00\x00", "outside a sequence"),
        (b"\xfe\xff\x0d\xe0\x00\x00\x00\x00", "outside an undefined-length item"),
        (b"\x08\x00\x18\x00UI\x04\x001.2", "ends inside an element"),
        # A defined-length sequence of 8 bytes whose item claims 10.
        (
            b"\x08\x00\x40\x11SQ\x00\x00\x08\x00\x00\x00\xfe\xff\x00\xe0\x0a\x00\x00\x00"
            + bytes(10),
            "overruns",
        ),
        # An undefined-length sequence never closed.
        (b"\x08\x00\x40\x11SQ\x00\x00\xff\xff\xff\xff", "ends inside a sequence"),
        # A sequence holding an element instead of an item.
        (b"\x08\x00\x40\x11SQ\x00\x00\xff\xff\xff\xff\x08\x00\x18\x00UI\x00\x00", "expected"),
        # Undefined length on a VR that cannot have one.
        (b"\x10\x00\x20\x00OB\x00\x00\xff\xff\xff\xff", "undefined length"),
    ],
)
def test_malformed_data_sets_are_reported(data: bytes, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        scan(data, [1] * len(data), implicit_vr=False)


def test_truncation_anywhere_is_detected() -> None:
    data = encode(sample(undefined_lengths=True), implicit=False)
    for cut in range(1, len(data) - 1, 37):
        scanner = DatasetScanner(implicit_vr=False)
        scanner.feed(data[:cut])
        with pytest.raises(DatasetError):
            scanner.finish()
