"""File meta encoding (equal to pydicom's) and the layout: rendering, sanitising, refusals."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info

from netdicom.archive.layout import (
    DEFAULT_LAYOUT,
    PLACEHOLDER,
    Layout,
    LayoutError,
    UnsafePath,
)
from netdicom.archive.meta import PREAMBLE, encode_file_meta
from netdicom.cli import serve as serve_cli
from netdicom.core import uids

PATIENT_ID = 0x00100020
STUDY = 0x0020000D
SERIES = 0x0020000E
SOP_INSTANCE = 0x00080018


@pytest.mark.parametrize("ae", ["STORESCU", "ODD", None])
@pytest.mark.parametrize("instance", ["1.2.3.4", "1.2.3.45"])  # even and odd UID lengths
def test_file_meta_is_what_pydicom_writes(ae: str | None, instance: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = instance
    meta.TransferSyntaxUID = uids.EXPLICIT_VR_LE
    meta.ImplementationClassUID = uids.IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = uids.IMPLEMENTATION_VERSION_NAME
    if ae:
        meta.SourceApplicationEntityTitle = ae
    fp = DicomBytesIO()
    write_file_meta_info(fp, meta, enforce_standard=True)
    ours = encode_file_meta(
        sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
        sop_instance_uid=instance,
        transfer_syntax=uids.EXPLICIT_VR_LE,
        source_ae_title=ae,
    )
    assert ours == PREAMBLE + fp.getvalue()


def test_cli_default_layout_is_the_archive_default() -> None:
    assert serve_cli.DEFAULT_LAYOUT == DEFAULT_LAYOUT


def render(values: dict[int, bytes | str], template: str = DEFAULT_LAYOUT) -> PurePosixPath:
    return Layout.parse(template).render(values)


def test_default_layout() -> None:
    path = render(
        {PATIENT_ID: b"PAT1 ", STUDY: b"1.2.3\x00", SERIES: b"1.2.4", SOP_INSTANCE: "1.2.5"}
    )
    assert path == PurePosixPath("PAT1/1.2.3/1.2.4/1.2.5.dcm")


@pytest.mark.parametrize(
    ("patient_id", "component"),
    [
        (b"", PLACEHOLDER),
        (b"   ", PLACEHOLDER),
        (b"..", "_."),
        (b".", "_"),
        (b"../../etc/passwd", "_._.._etc_passwd"),
        (b"/etc", "_etc"),
        (b"A\\B", "A_B"),
        ("Müller".encode("latin-1"), "Müller"),  # no character set: Latin-1 fallback
        ("Mü/ller\n".encode(), "Mü_ller_"),
        ("x\u200by".encode(), "x_y"),  # a format character is not a letter
        (b"X" * 200, "X" * 64),
        (b"-rf", "_rf"),  # a shell glob would hand it to a command as an option
    ],
)
def test_values_are_sanitised(patient_id: bytes, component: str) -> None:
    path = render({PATIENT_ID: patient_id, STUDY: "1.2", SERIES: "1.3", SOP_INSTANCE: "1.4"})
    assert path.parts[0] == component
    assert len(path.parts) == 4


NAME = 0x00100010
CHARSET = 0x00080005


@pytest.mark.parametrize(
    ("charset", "raw"),
    [
        (b"ISO_IR 100", "Müller^Jürgen".encode("latin-1")),
        (b"ISO_IR 192", "Müller^Jürgen".encode()),
        (b"ISO_IR 192", "Mu\u0308ller^Ju\u0308rgen".encode()),  # decomposed: NFC first
        (None, "Müller^Jürgen".encode()),  # undeclared UTF-8 (the documented fallback)
    ],
)
def test_names_are_decoded_per_character_set(charset: bytes | None, raw: bytes) -> None:
    # One patient, one folder, whatever encoding the sender used (it was "M_ller^J_rgen" for
    # Latin-1 and "M__ller^J__rgen" for UTF-8).
    values: dict[int, bytes | str] = {NAME: raw, SOP_INSTANCE: "1.4"}
    if charset is not None:
        values[CHARSET] = charset
    assert render(values, "{PatientName}/{SOPInstanceUID}").parts[0] == "Müller^Jürgen"


def test_ideographic_names_keep_their_letters() -> None:
    # Two patients named in kanji shared the folder "______^______".
    template = "{PatientName}/{SOPInstanceUID}"
    first = render(
        {NAME: "山田^太郎".encode(), CHARSET: b"ISO_IR 192", SOP_INSTANCE: "1.4"}, template
    )
    second = render(
        {NAME: "田中^花子".encode(), CHARSET: b"ISO_IR 192", SOP_INSTANCE: "1.4"}, template
    )
    assert (first.parts[0], second.parts[0]) == ("山田^太郎", "田中^花子")
    # ISO 2022 with code extensions (PS3.5 Annex H): Yamada^Taro in JIS X 0208.
    jis = b"\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B"
    value = render({NAME: jis, CHARSET: b"\\ISO 2022 IR 87", SOP_INSTANCE: "1.4"}, template)
    assert value.parts[0] == "山田^太郎"


def test_a_component_over_255_bytes_is_cut_with_a_digest() -> None:
    # 64 letters of 4 bytes in UTF-8 (a legal LO): "File name too long", refused for ever.
    wide = "\U00020000"
    values: dict[int, bytes | str] = {CHARSET: b"ISO_IR 192", STUDY: "1.2", SERIES: "1.3"}
    first = render({**values, PATIENT_ID: (wide * 64).encode(), SOP_INSTANCE: "1.4"})
    other = render({**values, PATIENT_ID: (wide * 63 + "\U00020001").encode(), SOP_INSTANCE: "1.4"})
    for path in (first, other):
        assert all(len(part.encode()) <= 255 for part in path.parts)
        assert path.parts[0].startswith(wide * 40) and "~" in path.parts[0]
    assert first.parts[0] != other.parts[0]  # the digest keeps them apart
    # Several fields in one component; the UID is kept whole.
    long = "X" * 64
    template = "{StudyDescription}{SeriesDescription}{PatientName}{PatientID}{SOPInstanceUID}.dcm"
    uid = "1.2.826.0.1.3680043.8.498." + "1" * 38
    name = render(
        {0x00081030: long, 0x0008103E: long, NAME: long, PATIENT_ID: long, SOP_INSTANCE: uid},
        template,
    ).parts[0]
    assert len(name.encode()) <= 255 and name.endswith(uid + ".dcm")


def test_layout_asks_for_the_character_set() -> None:
    assert CHARSET in Layout.parse("{PatientName}/{SOPInstanceUID}").tags
    assert CHARSET not in Layout.parse("{StudyInstanceUID}/{SOPInstanceUID}").tags


@pytest.mark.parametrize("uid", ["../x", "/etc/x", "..", "1.2/../3", "1.2.a", "1." * 40])
def test_invalid_uids_are_refused(uid: str) -> None:
    with pytest.raises(UnsafePath):
        render({PATIENT_ID: b"P", STUDY: "1.2", SERIES: "1.3", SOP_INSTANCE: uid})
    with pytest.raises(UnsafePath):
        render({PATIENT_ID: b"P", STUDY: uid, SERIES: "1.3", SOP_INSTANCE: "1.4"})


def test_missing_uid_gets_the_placeholder() -> None:
    path = render({SOP_INSTANCE: "1.4"})
    assert path == PurePosixPath(f"{PLACEHOLDER}/{PLACEHOLDER}/{PLACEHOLDER}/1.4.dcm")


def test_other_templates() -> None:
    layout = Layout.parse("{Modality}/{StudyDate}-{PatientName}/{SOPInstanceUID}")
    assert layout.tags == {0x00080060, 0x00080020, 0x00100010, 0x00080005, SOP_INSTANCE}
    path = layout.render(
        {0x00080060: b"CT", 0x00080020: b"20240102", 0x00100010: b"DOE^JOHN", SOP_INSTANCE: "9"}
    )
    assert path == PurePosixPath("CT/20240102-DOE^JOHN/9")


@pytest.mark.parametrize(
    "template",
    [
        "",
        "/abs/{SOPInstanceUID}",
        "../{SOPInstanceUID}",
        "a/./{SOPInstanceUID}",
        "a//{SOPInstanceUID}",
        "{NotAKeyword}/{SOPInstanceUID}",
        "{PixelData}/{SOPInstanceUID}",
        "{ReferencedImageSequence}/{SOPInstanceUID}",
        "{PatientID}",
        "{SOPInstanceUID:>10}",
        "{SOPInstanceUID",
    ],
)
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(LayoutError):
        Layout.parse(template)
