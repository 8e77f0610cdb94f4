"""C-FIND keys whose values are binary numbers (US SS UL SL UV SV FL FD), tags (AT) or bytes
(OB OW UN): the SCU encodes numbers, serve answers and matches them (PS3.4 C.2.2.2.1) and never
fails a whole query over them."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from netdicom.archive.matching import STUDY_ROOT_FIND, Level
from netdicom.core import uids
from netdicom.core.acse import ProposedContext
from netdicom.core.dimse import CFindRQ, CFindRSP, status
from netdicom.services.find_scp import encode_identifier
from netdicom.services.find_scu import BadKey, build_identifier, parse_key
from netdicom.services.session import receive_response
from tests.dicomfiles import make_dataset, write_instance
from tests.services.test_find_scp import connect, raw_find, run, serving

ROWS = 0x00280010
FRAME_POINTER = 0x00280009  # Frame Increment Pointer, AT
RED_LUT = 0x00281201  # Red Palette Color Lookup Table Data, OW


def _archive(root: Path) -> None:
    ds = make_dataset(study_uid="5.5", sop_instance_uid="5.5.1.1", rows=16, columns=8)
    ds.DiffusionBValue = 2.5
    ds.FrameIncrementPointer = 0x00181063
    write_instance(root / "a.dcm", ds)


def _image_query(**keys: object) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "IMAGE"
    ds.StudyInstanceUID = "5.5"
    ds.SOPInstanceUID = ""
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize("syntax", [uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE])
def test_number_return_keys_are_answered_with_their_values(tmp_path: Path, syntax: str) -> None:
    _archive(tmp_path)
    query = _image_query(Rows=None, Columns=None, DiffusionBValue=None)
    # A tag (even as a matching key) and bytes: not supported keys, but no failure either.
    query.add_new(FRAME_POINTER, "AT", 0x00181063)
    query.add_new(RED_LUT, "OW", None)

    async def go() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app, [ProposedContext(STUDY_ROOT_FIND, (syntax,))])
            pending, final = await raw_find(assoc, query)
            await assoc.release()
        assert final.status == status.SUCCESS
        ((code, ds),) = pending
        assert code == status.PENDING_WARNING  # AT and OW are not supported keys
        assert ds.Rows == 16 and ds.Columns == 8 and ds.DiffusionBValue == 2.5
        assert ds[FRAME_POINTER].value in (None, b"") and ds[RED_LUT].value in (None, b"")
        assert str(ds.SOPInstanceUID) == "5.5.1.1"

    run(go)


@pytest.mark.parametrize(
    ("matching", "not_matching"),
    [
        ({"Rows": 16}, {"Rows": 17}),
        ({"Rows": [8, 16]}, {"Rows": [8, 17]}),  # any of several values
        ({"Rows": 16, "Columns": 8}, {"Rows": 16, "Columns": 16}),
        ({"DiffusionBValue": 2.5}, {"DiffusionBValue": 2.0}),
    ],
)
def test_number_matching_keys_match_by_value(
    tmp_path: Path, matching: dict[str, object], not_matching: dict[str, object]
) -> None:
    _archive(tmp_path)

    async def go() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app)
            found, final = await raw_find(assoc, _image_query(**matching))
            assert final.status == status.SUCCESS
            none, final = await raw_find(assoc, _image_query(**not_matching))
            assert final.status == status.SUCCESS
            await assoc.release()
        assert [str(ds.SOPInstanceUID) for _, ds in found] == ["5.5.1.1"]
        assert none == []
        ((_, ds),) = found  # a match answers its own values
        stored = {"Rows": 16, "Columns": 8, "DiffusionBValue": 2.5}
        assert {k: getattr(ds, k) for k in matching} == {k: stored[k] for k in matching}

    run(go)


def test_a_number_key_of_the_wrong_length_is_unable_to_process(tmp_path: Path) -> None:
    _archive(tmp_path)
    # Explicit VR little endian: (0008,0052) CS "IMAGE ", then (0018,9087) FD of 6 bytes: no
    # whole number of 8-byte doubles.
    level = b"\x08\x00\x52\x00CS\x06\x00IMAGE "
    b_value = b"\x18\x00\x87\x90FD\x06\x00" + bytes(6)

    async def go() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app, [ProposedContext(STUDY_ROOT_FIND, (uids.EXPLICIT_VR_LE,))])
            message_id = assoc.message_ids.next()
            await assoc.send_message(1, CFindRQ(message_id, STUDY_ROOT_FIND), level + b_value)
            rsp, _ = await receive_response(assoc, message_id, 10)
            assert isinstance(rsp, CFindRSP)
            assert 0xC000 <= rsp.status <= 0xCFFF
            assert "(0018,9087)" in (rsp.error_comment or "")
            # The association goes on.
            _, final = await raw_find(assoc, _image_query(Rows=16))
            assert final.status == status.SUCCESS
            await assoc.release()

    run(go)


def test_scu_identifier_holds_numbers() -> None:
    keys = [parse_key(k) for k in ("Rows=16", "Columns=", "DiffusionBValue=-2e-3")]
    wanted = {key.tag: key.value for key in keys} | {0x00280106: "8\\16"}
    identifier = build_identifier(Level.IMAGE, wanted)
    assert identifier.Rows == 16 and identifier.Columns is None
    assert identifier.DiffusionBValue == -0.002
    assert list(identifier[0x00280106].value) == [8, 16]
    encode_identifier(identifier, uids.EXPLICIT_VR_LE)  # pydicom can write it
    assert build_identifier(Level.IMAGE, {ROWS: "*"}).Rows is None  # universal, as ''


def test_a_us_or_ss_key_takes_a_negative_value_as_ss() -> None:
    # Smallest Image Pixel Value is "US or SS" (signed images): -5 was refused as a US key.
    key = parse_key("SmallestImagePixelValue=-5")
    identifier = build_identifier(Level.IMAGE, {key.tag: key.value})
    element = identifier[0x00280106]
    assert (element.VR, element.value) == ("SS", -5)
    encode_identifier(identifier, uids.EXPLICIT_VR_LE)
    assert build_identifier(Level.IMAGE, {key.tag: "40000"})[0x00280106].VR == "US"
    with pytest.raises(BadKey):
        parse_key("SmallestImagePixelValue=-40000")  # neither US nor SS


@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("Rows=abc", "Rows='abc': a US key is an integer from 0 to 65535"),
        ("Rows=70000", "from 0 to 65535"),
        ("Rows=-1", "from 0 to 65535"),
        ("Rows=1.5", "an integer"),
        ("Rows=16\\x", "an integer"),
        ("0028,0010=abc", "Rows='abc'"),
        ("DiffusionBValue=high", "DiffusionBValue='high': an FD key is a decimal number"),
    ],
)
def test_scu_refuses_a_number_key_that_is_no_number(key: str, words: str) -> None:
    with pytest.raises(BadKey, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_key(key)
