"""netdicom.core.datasets: probing files without decoding them, and re-encoding data sets."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)

from netdicom.core import uids
from netdicom.core.datasets import (
    DicomFile,
    Encoding,
    FileSource,
    NotSendable,
    detect_encoding,
    encode_dataset,
    probe_file,
)
from tests.dicomfiles import CT, make_dataset, write_instance


def _dataset_bytes(path: Path, offset: int) -> bytes:
    return path.read_bytes()[offset:]


def _decode(data: bytes, implicit: bool) -> Dataset:
    return read_dataset(DicomBytesIO(data), implicit, True)


@pytest.mark.parametrize("ts", [str(ExplicitVRLittleEndian), str(ImplicitVRLittleEndian)])
def test_probe_reads_meta_and_offset(tmp_path: Path, ts: str) -> None:
    ds = make_dataset()
    path = write_instance(tmp_path / "a.dcm", ds, ts)
    info = probe_file(path)
    assert info.sop_class_uid == CT
    assert info.sop_instance_uid == ds.SOPInstanceUID
    assert info.transfer_syntax == ts
    assert info.dataset_offset + info.dataset_length == path.stat().st_size
    # The bytes after the offset are exactly the data set pydicom reads from the file.
    decoded = _decode(_dataset_bytes(path, info.dataset_offset), ts == uids.IMPLICIT_VR_LE)
    assert decoded.SOPInstanceUID == ds.SOPInstanceUID
    assert decoded.PixelData == ds.PixelData
    assert not info.compressed


def test_file_source_streams_the_data_set(tmp_path: Path) -> None:
    path = write_instance(tmp_path / "a.dcm", make_dataset(rows=64, columns=64))
    info = probe_file(path)
    source = FileSource(info)
    pieces = []
    while piece := source.read(1000):
        pieces.append(piece)
    source.close()
    assert max(len(p) for p in pieces) == 1000
    assert b"".join(pieces) == _dataset_bytes(path, info.dataset_offset)
    assert source.length == info.dataset_length == source.sent


def test_not_dicom_is_skipped(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello " * 100)
    with pytest.raises(NotSendable, match="DICM") as caught:
        probe_file(text)
    assert caught.value.skip
    short = tmp_path / "short"
    short.write_bytes(b"abc")
    with pytest.raises(NotSendable, match="preamble") as caught:
        probe_file(short)
    assert caught.value.skip


def test_dicomdir_is_skipped(tmp_path: Path) -> None:
    ds = make_dataset()
    path = write_instance(tmp_path / "DICOMDIR", ds)
    raw = bytearray(path.read_bytes())
    # Rewrite the meta's SOP class to Media Storage Directory Storage, same length (padded).
    old = CT.encode()
    new = b"1.2.840.10008.1.3.10"
    new = new + b"\0" * (len(old) - len(new))
    index = raw.index(old)
    raw[index : index + len(old)] = new
    path.write_bytes(bytes(raw))
    with pytest.raises(NotSendable, match="DICOMDIR") as caught:
        probe_file(path)
    assert caught.value.skip


def test_meta_and_data_set_uids_must_match(tmp_path: Path) -> None:
    ds = make_dataset(sop_instance_uid="1.2.3.4")
    path = write_instance(tmp_path / "a.dcm", ds)
    raw = path.read_bytes()
    # Change the data set's SOP Instance UID (after the meta), not the meta's.
    info = probe_file(path)
    head, body = raw[: info.dataset_offset], raw[info.dataset_offset :]
    path.write_bytes(head + body.replace(b"1.2.3.4\0", b"1.2.3.5\0"))
    with pytest.raises(
        NotSendable, match=r"SOP Instance UID 1\.2\.3\.4 differs .* 1\.2\.3\.5"
    ) as caught:
        probe_file(path)
    assert not caught.value.skip
    assert "dcmconv" in str(caught.value)  # what to do about it (walkthrough 6b)


def test_a_transfer_syntax_dicom_does_not_define_is_named_as_such(tmp_path: Path) -> None:
    # Walkthrough 6b: reported as "Pixel Data is native, but the transfer syntax encapsulates
    # it", every unknown UID being taken for a compressed syntax.
    path = write_instance(tmp_path / "a.dcm", make_dataset(), "1.2.3.4.5.6")
    with pytest.raises(NotSendable, match=r"transfer syntax 1\.2\.3\.4\.5\.6 is not one DICOM"):
        probe_file(path)


def test_meta_transfer_syntax_must_match_encoding(tmp_path: Path) -> None:
    implicit = write_instance(tmp_path / "i.dcm", make_dataset(), str(ImplicitVRLittleEndian))
    explicit = write_instance(tmp_path / "e.dcm", make_dataset(), str(ExplicitVRLittleEndian))
    # Graft each data set under the other's meta: meta and encoding now disagree.
    i_info, e_info = probe_file(implicit), probe_file(explicit)
    i_raw, e_raw = implicit.read_bytes(), explicit.read_bytes()
    lying = tmp_path / "lying.dcm"
    lying.write_bytes(e_raw[: e_info.dataset_offset] + i_raw[i_info.dataset_offset :])
    with pytest.raises(NotSendable, match="encoded in implicit VR little endian") as caught:
        probe_file(lying)
    assert not caught.value.skip
    lying.write_bytes(i_raw[: i_info.dataset_offset] + e_raw[e_info.dataset_offset :])
    with pytest.raises(NotSendable, match="encoded in explicit VR little endian"):
        probe_file(lying)


def test_detect_encoding_vectors() -> None:
    # (0008,0005) CS, length 10, explicit VR little endian.
    assert detect_encoding(b"\x08\x00\x05\x00CS\x0a\x00") == Encoding.EXPLICIT_LE
    # The same element in explicit VR big endian.
    assert detect_encoding(b"\x00\x08\x00\x05CS\x00\x0a") == Encoding.EXPLICIT_BE
    # Implicit VR little endian: tag then a 4-byte length.
    assert detect_encoding(b"\x08\x00\x05\x00\x0a\x00\x00\x00") == Encoding.IMPLICIT_LE
    assert detect_encoding(b"\x08\x00") is None


def _write_big_endian(path: Path, ds: Dataset) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRBigEndian
    ds.file_meta = meta
    ds.PixelData = np.frombuffer(ds.PixelData, "<u2").astype(">u2").tobytes()
    ds.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=False)
    return path


def test_probe_deflated_and_big_endian(tmp_path: Path) -> None:
    ds = make_dataset()
    deflated = write_instance(tmp_path / "d.dcm", ds, str(DeflatedExplicitVRLittleEndian))
    info = probe_file(deflated)
    assert info.transfer_syntax == uids.DEFLATED_EXPLICIT_VR_LE
    assert info.sop_instance_uid == ds.SOPInstanceUID
    big = _write_big_endian(tmp_path / "b.dcm", make_dataset())
    info = probe_file(big)
    assert info.transfer_syntax == uids.EXPLICIT_VR_BE


def test_deflated_that_does_not_inflate(tmp_path: Path) -> None:
    path = write_instance(tmp_path / "d.dcm", make_dataset(), str(DeflatedExplicitVRLittleEndian))
    info = probe_file(path)
    raw = path.read_bytes()
    path.write_bytes(raw[: info.dataset_offset] + b"\xff" * 64)
    with pytest.raises(NotSendable, match="inflate"):
        probe_file(path)


def test_sequence_before_sop_uids_uses_pydicom(tmp_path: Path) -> None:
    ds = make_dataset()
    item = Dataset()
    item.CodeValue = "eng"
    # (0008,0006) Language Code Sequence sorts before SOP Class UID (0008,0016).
    ds.LanguageCodeSequence = Sequence([item])
    path = write_instance(tmp_path / "a.dcm", ds)
    info = probe_file(path)
    assert info.sop_instance_uid == ds.SOPInstanceUID


@pytest.mark.parametrize(
    ("source_ts", "target_ts"),
    [
        (str(ImplicitVRLittleEndian), uids.EXPLICIT_VR_LE),
        (str(ExplicitVRLittleEndian), uids.IMPLICIT_VR_LE),
        (str(DeflatedExplicitVRLittleEndian), uids.EXPLICIT_VR_LE),
        (str(DeflatedExplicitVRLittleEndian), uids.IMPLICIT_VR_LE),
    ],
)
def test_encode_converts_element_by_element(tmp_path: Path, source_ts: str, target_ts: str) -> None:
    ds = make_dataset()
    path = write_instance(tmp_path / "a.dcm", ds, source_ts)
    encoded = encode_dataset(probe_file(path), target_ts)
    assert len(encoded) % 2 == 0
    result = _decode(encoded, target_ts == uids.IMPLICIT_VR_LE)
    original = dcmread(path)
    assert [e.tag for e in result] == [e.tag for e in original]
    for element in original:
        assert result[element.tag].value == element.value, element.tag


def test_encode_from_big_endian_swaps_words(tmp_path: Path) -> None:
    ds = make_dataset()
    pixels = ds.PixelData
    path = _write_big_endian(tmp_path / "b.dcm", ds)
    result = _decode(encode_dataset(probe_file(path), uids.EXPLICIT_VR_LE), False)
    assert result.PixelData == pixels
    assert result.Rows == 8


def test_encode_from_big_endian_copies_un_values_as_they_are(tmp_path: Path) -> None:
    # PS3.5 6.2.2: a UN value is not byte-swapped (it is little endian implicit VR whatever
    # the transfer syntax); it stopped the conversion, where dcmtk converts such a file.
    ds = make_dataset()
    ds.add_new(0x00290010, "LO", "ACME")
    ds.add_new(0x00291010, "UN", b"\x01\x00\x02\x00")
    path = _write_big_endian(tmp_path / "b.dcm", ds)
    for target in (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE):
        result = _decode(encode_dataset(probe_file(path), target), target == uids.IMPLICIT_VR_LE)
        assert result[0x00291010].value == b"\x01\x00\x02\x00"
        assert result.Rows == 8


def test_encode_drops_group_lengths(tmp_path: Path) -> None:
    ds = make_dataset()
    path = write_instance(tmp_path / "a.dcm", ds, str(ImplicitVRLittleEndian))
    info = probe_file(path)
    raw = path.read_bytes()
    # Prepend a (0008,0000) group length (UL, implicit VR) to the data set.
    group_length = struct.pack("<HHII", 0x0008, 0x0000, 4, 1234)
    path.write_bytes(raw[: info.dataset_offset] + group_length + raw[info.dataset_offset :])
    info = probe_file(path)
    for ts in (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE):
        result = _decode(encode_dataset(info, ts), ts == uids.IMPLICIT_VR_LE)
        assert 0x00080000 not in result
        assert result.SOPInstanceUID == ds.SOPInstanceUID


def test_encode_refuses_compressed_and_big_endian_output(tmp_path: Path) -> None:
    info = DicomFile(tmp_path / "x.dcm", CT, "1.2.3", str(JPEGBaseline8Bit), 200, 1000)
    with pytest.raises(NotSendable, match="compressed"):
        encode_dataset(info, uids.EXPLICIT_VR_LE)
    path = write_instance(tmp_path / "a.dcm", make_dataset())
    with pytest.raises(NotSendable, match="cannot encode"):
        encode_dataset(probe_file(path), uids.EXPLICIT_VR_BE)


def test_zlib_roundtrip_sanity() -> None:
    # Deflated data sets are raw deflate streams (no zlib header), PS3.5 §A.5.
    packed = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    data = packed.compress(b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100") + packed.flush()
    assert detect_encoding(zlib.decompress(data, -zlib.MAX_WBITS)) == Encoding.EXPLICIT_LE


# --- checked again just before sending ------------------------------------------------------


def _swap_in(path: Path, other: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(other.read_bytes())
    tmp.replace(path)  # a new inode, as `mv` makes


def test_checked_source_streams_an_unchanged_file(tmp_path: Path) -> None:
    from netdicom.core.datasets import FileSource as Source

    path = write_instance(tmp_path / "a.dcm", make_dataset(rows=64, columns=64))
    info = probe_file(path)
    source = Source.checked(info)
    data = source.read(info.dataset_length)
    source.close()
    assert data == _dataset_bytes(path, info.dataset_offset)


def test_checked_source_refuses_a_file_that_changed(tmp_path: Path) -> None:
    from netdicom.core.datasets import FileChanged

    path = write_instance(tmp_path / "a.dcm", make_dataset(rows=64, columns=64))
    info = probe_file(path)
    other = write_instance(tmp_path / "b.dcm", make_dataset(rows=64, columns=64))
    other_uid = probe_file(other).sop_instance_uid
    _swap_in(path, other)  # the same size, another instance
    with pytest.raises(FileChanged) as replaced:
        FileSource.checked(info)
    # (Generated UIDs differ in length now and then: the data set length may be named too.)
    assert str(replaced.value).startswith(
        f"changed since it was checked: SOP Instance UID {info.sop_instance_uid} is now {other_uid}"
    )
    assert not replaced.value.skip
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(FileChanged, match=r"^changed since it was checked: the file is trunc"):
        FileSource.checked(info)
    path.write_text("not DICOM any more " * 20)
    with pytest.raises(FileChanged, match="changed since it was checked: not a DICOM"):
        FileSource.checked(info)


def test_a_file_cut_short_while_it_is_read_raises(tmp_path: Path) -> None:
    import os

    from netdicom.core.datasets import FileChanged

    path = write_instance(tmp_path / "a.dcm", make_dataset(rows=64, columns=64))
    info = probe_file(path)
    whole = path.read_bytes()
    for use_readinto in (False, True):
        path.write_bytes(whole)
        source = FileSource.checked(info)
        os.truncate(path, info.dataset_offset + 100)
        with pytest.raises(FileChanged, match=r"being sent: its data set ended after 100 of"):
            for _ in range(info.dataset_length // 1000 + 2):
                if use_readinto:
                    source.readinto(memoryview(bytearray(1000)))
                else:
                    source.read(1000)
        source.close()


def test_encode_with_check_converts_only_the_planned_instance(tmp_path: Path) -> None:
    from netdicom.core.datasets import FileChanged

    path = write_instance(tmp_path / "a.dcm", make_dataset(), str(ExplicitVRLittleEndian))
    info = probe_file(path)
    encoded = encode_dataset(info, uids.IMPLICIT_VR_LE, check=True)
    assert _decode(encoded, True).SOPInstanceUID == info.sop_instance_uid
    _swap_in(path, write_instance(tmp_path / "b.dcm", make_dataset(), str(ExplicitVRLittleEndian)))
    with pytest.raises(FileChanged, match=f"SOP Instance UID {info.sop_instance_uid} is now"):
        encode_dataset(info, uids.IMPLICIT_VR_LE, check=True)


def test_an_untouched_file_is_not_probed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The check before sending costs one fstat when size, times, inode and device are those
    # of the probe: probing every file twice was a third of the sender's CPU on 2 KB files.
    import os

    import netdicom.core.datasets as datasets

    path = write_instance(tmp_path / "a.dcm", make_dataset())
    info = probe_file(path)
    assert info.stamp is not None and info.stamp[0] == path.stat().st_size
    probes: list[Path] = []
    probe = datasets._probe_open

    def counting(fp: Any, where: Path, size: int) -> Any:
        probes.append(where)
        return probe(fp, where, size)

    monkeypatch.setattr(datasets, "_probe_open", counting)
    FileSource.checked(info).close()
    assert probes == []
    stamp = path.stat()
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000_000))  # written since
    FileSource.checked(info).close()
    assert probes == [path]


def test_dicom_without_the_part10_header_fails_rather_than_being_skipped(tmp_path: Path) -> None:
    # A skipped file leaves the exit code 0: these are instances, and a CI job must notice.
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    ds = make_dataset()
    raw = write_instance(tmp_path / "a.dcm", ds).read_bytes()
    no_preamble = tmp_path / "no_preamble.dcm"
    no_preamble.write_bytes(raw[132:])
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, make_dataset())
    bare = tmp_path / "bare.dcm"
    bare.write_bytes(buffer.getvalue())
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = False, False
    write_dataset(buffer, make_dataset())
    bare_big = tmp_path / "bare_big.dcm"  # skipped as "not DICOM" (walkthrough 6b)
    bare_big.write_bytes(buffer.getvalue())
    text = tmp_path / "notes.txt"
    text.write_text("not DICOM at all, and long enough to pass the preamble length check" * 3)
    for path, what in ((no_preamble, "without the 128-byte preamble"),
                       (bare, "without the Part 10 header"),
                       (bare_big, "big endian DICOM data set without the Part 10")):  # fmt: skip
        with pytest.raises(NotSendable, match=what) as info:
            probe_file(path)
        assert not info.value.skip
    with pytest.raises(NotSendable, match="not a DICOM Part 10 file") as info:
        probe_file(text)
    assert info.value.skip


def test_probing_a_file_imports_no_pydicom(tmp_path: Path) -> None:
    # `store` probes every file before the association: the transfer syntax check of the
    # twelfth session imported pydicom (and numpy, PIL, ...) there, 0.25 s per run.
    import subprocess
    import sys

    path = write_instance(tmp_path / "a.dcm", make_dataset())
    code = (
        "import sys; from pathlib import Path; from netdicom.core.datasets import probe_file; "
        f"probe_file(Path({str(path)!r})); print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('pydicom', 'numpy')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout
