"""The C-FIND SCP of serve, in process, driven by netdicom's own SCU over 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from netdicom.archive.matching import STUDY_ROOT_FIND, Level, Model
from netdicom.core import uids
from netdicom.core.acse import ProposedContext, build_associate_rq
from netdicom.core.dimse import CCancelRQ, CFindRQ, CFindRSP, CStoreRQ, CStoreRSP, status
from netdicom.core.pdu import SOPClassExtendedNegotiation
from netdicom.services.find_scp import decode_identifier, encode_identifier
from netdicom.services.find_scu import build_identifier, find, find_contexts
from netdicom.services.peer import Peer
from netdicom.services.serve import ServeApp, ServeConfig
from netdicom.services.session import ClientOptions, open_association, receive_response
from netdicom.transport.association import Association
from netdicom.transport.client import associate
from netdicom.transport.config import TransportConfig
from tests.dicomfiles import CT, make_dataset, write_instance

EXPLICIT = uids.EXPLICIT_VR_LE


@contextlib.asynccontextmanager
async def serving(root: Path) -> AsyncIterator[ServeApp]:
    app = ServeApp(ServeConfig(directory=root, port=0, ae_title="FINDSCP"))
    await app.server.start()
    task = asyncio.create_task(app.server.serve_forever())
    try:
        yield app
    finally:
        await app.server.close(grace=1.0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def connect(app: ServeApp, contexts: list[ProposedContext] | None = None) -> Association:
    return await open_association(
        Peer("127.0.0.1", app.server.port, "FINDSCP"),
        ClientOptions(calling_ae="TESTSCU"),
        contexts or list(find_contexts(Model.STUDY_ROOT)),
    )


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 60))


async def raw_find(
    assoc: Association, ds: Dataset, *, cancel_after: int | None = None
) -> tuple[list[tuple[int, Dataset]], CFindRSP]:
    """Send a C-FIND-RQ; return every pending (status, identifier) and the final response."""
    ctx = assoc.negotiated.context_for(STUDY_ROOT_FIND)  # type: ignore[union-attr]
    assert ctx is not None
    message_id = assoc.message_ids.next()
    data = encode_identifier(ds, ctx.transfer_syntax)
    await assoc.send_message(ctx.context_id, CFindRQ(message_id, STUDY_ROOT_FIND), data)
    pending: list[tuple[int, Dataset]] = []
    while True:
        rsp, body = await receive_response(assoc, message_id, 10)
        assert isinstance(rsp, CFindRSP)
        if rsp.status in (status.PENDING, status.PENDING_WARNING):
            assert body is not None
            pending.append((rsp.status, decode_identifier(body, ctx.transfer_syntax)))
            if cancel_after is not None and len(pending) == cancel_after:
                await assoc.send_message(ctx.context_id, CCancelRQ(message_id))
            continue
        assert body is None
        return pending, rsp


async def store_via(assoc: Association, ds: Dataset, message_id: int = 1) -> None:
    """C-STORE `ds` on the association's CT context (the first), asserting success."""
    data = encode_identifier(ds, EXPLICIT)
    await assoc.send_message(1, CStoreRQ(message_id, CT, ds.SOPInstanceUID), data)
    rsp, _ = await receive_response(assoc, message_id, 10)
    assert isinstance(rsp, CStoreRSP) and rsp.status == status.SUCCESS


def study_query(**keys: Any) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def test_stored_instance_is_found_at_once(tmp_path: Path) -> None:
    """The store hook indexes before success is answered: a C-FIND right after finds it."""

    async def go() -> None:
        async with serving(tmp_path) as app:
            contexts = [ProposedContext(CT, (EXPLICIT,)), *find_contexts(Model.STUDY_ROOT)]
            assoc = await connect(app, contexts)
            ds = make_dataset(study_uid="7.7", patient_name="STORED^NOW")
            data = encode_identifier(ds, EXPLICIT)
            await assoc.send_message(1, CStoreRQ(1, CT, ds.SOPInstanceUID), data)
            rsp, _ = await receive_response(assoc, 1, 10)
            assert isinstance(rsp, CStoreRSP) and rsp.status == status.SUCCESS
            found: list[Dataset] = []
            identifier = build_identifier(Level.STUDY, {0x00100010: "STORED*", 0x0020000D: ""})
            result = await find(assoc, Model.STUDY_ROOT, identifier, lambda d, s: found.append(d))
            await assoc.release()
        assert result.status == status.SUCCESS
        assert [str(d.StudyInstanceUID) for d in found] == ["7.7"]

    run(go)


def test_response_holds_requested_keys_and_ff01_for_unsupported(tmp_path: Path) -> None:
    write_instance(tmp_path / "a.dcm", make_dataset(study_uid="1.1", patient_name="DOE^JOHN"))

    async def go() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app)
            plain, final = await raw_find(assoc, study_query(PatientName="DOE*", StudyDate=""))
            query = study_query(PatientName="", Modality="")  # Modality: a SERIES key
            query.add_new(0x00091010, "LO", "")  # a private tag: never a key
            warned, final2 = await raw_find(assoc, query)
            await assoc.release()
        assert final.status == final2.status == status.SUCCESS
        ((code, ds),) = plain
        assert code == status.PENDING
        # No Specific Character Set for ASCII values: never zero-length (PS3.4 C.2.2.2).
        assert {el.keyword for el in ds} == {
            "StudyDate",
            "QueryRetrieveLevel",
            "RetrieveAETitle",
            "PatientName",
        }
        assert ds.RetrieveAETitle == "FINDSCP"
        assert ds.StudyDate == "20240102"
        ((code2, ds2),) = warned
        assert code2 == status.PENDING_WARNING
        assert ds2.Modality == "" and ds2[0x00091010].value in (None, "", b"")

    run(go)


def test_sequence_key_returns_only_the_matching_items(tmp_path: Path) -> None:
    # PS3.4 C.2.2.2.6: "a sequence of matching Items containing only the requested Attributes".
    ds = make_dataset(study_uid="1.1")
    codes = []
    for value, meaning in (("CTCHEST", "CT Chest"), ("CTABD", "CT Abdomen")):
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "L", meaning
        codes.append(item)
    ds.ProcedureCodeSequence = codes
    write_instance(tmp_path / "a.dcm", ds)
    key = Dataset()
    key.CodeValue, key.CodeMeaning = "CTABD", ""

    async def go() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app)
            matched, _ = await raw_find(assoc, study_query(ProcedureCodeSequence=[key]))
            universal, _ = await raw_find(assoc, study_query(ProcedureCodeSequence=[]))
            await assoc.release()
        ((_, found),) = matched
        assert [(i.CodeValue, i.CodeMeaning) for i in found.ProcedureCodeSequence] == [
            ("CTABD", "CT Abdomen")
        ]
        assert "CodingSchemeDesignator" not in found.ProcedureCodeSequence[0]
        ((_, every),) = universal  # a key without item keys: the whole sequence
        assert [i.CodeValue for i in every.ProcedureCodeSequence] == ["CTCHEST", "CTABD"]

    run(go)


@pytest.mark.parametrize(
    ("identifier", "expected"),
    [
        (study_query(PatientName=""), status.SUCCESS),  # sanity: the association works
        (Dataset(), status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS),  # no level
        (study_query(), status.SUCCESS),
    ],
)
def test_identifier_checks(tmp_path: Path, identifier: Dataset, expected: int) -> None:
    async def go() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app)
            _, final = await raw_find(assoc, identifier)
            await assoc.release()
        assert final.status == expected

    run(go)


def test_bad_identifiers_get_failures_and_the_association_goes_on(tmp_path: Path) -> None:
    async def go() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app)
            patient_level = study_query()
            patient_level.QueryRetrieveLevel = "PATIENT"  # not in the study root model
            _, final = await raw_find(assoc, patient_level)
            assert final.status == status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
            assert "PATIENT" in (final.error_comment or "")
            # Bytes that are no data set at all.
            message_id = assoc.message_ids.next()
            await assoc.send_message(1, CFindRQ(message_id, STUDY_ROOT_FIND), b"\x08\x00\x52\x00")
            rsp, _ = await receive_response(assoc, message_id, 10)
            assert isinstance(rsp, CFindRSP)
            assert 0xC000 <= rsp.status <= 0xCFFF and rsp.error_comment
            _, final = await raw_find(assoc, study_query(PatientName=""))
            assert final.status == status.SUCCESS
            await assoc.release()

    run(go)


def test_cancel_between_pending_responses(tmp_path: Path) -> None:
    for i in range(300):
        write_instance(tmp_path / f"{i}.dcm", make_dataset(study_uid=f"9.{i}", instance_number=i))

    async def go() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app)
            everything, final = await raw_find(assoc, study_query(StudyInstanceUID=""))
            assert final.status == status.SUCCESS and len(everything) == 300
            some, final = await raw_find(assoc, study_query(StudyInstanceUID=""), cancel_after=1)
            assert final.status == status.CANCEL
            assert 1 <= len(some) < 300
            # The association is still usable.
            _, final = await raw_find(assoc, study_query(StudyInstanceUID="9.5"))
            assert final.status == status.SUCCESS
            await assoc.release()

    run(go)


def test_scu_max_results_cancels(tmp_path: Path) -> None:
    for i in range(50):
        write_instance(tmp_path / f"{i}.dcm", make_dataset(study_uid=f"9.{i}"))

    async def go() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app)
            got: list[Dataset] = []
            identifier = build_identifier(Level.STUDY, {0x0020000D: ""})
            result = await find(
                assoc, Model.STUDY_ROOT, identifier, lambda d, s: got.append(d), max_results=3
            )
            await assoc.release()
        assert result.cancelled and result.status == status.CANCEL
        assert len(got) == 3

    run(go)


def test_response_character_set(tmp_path: Path) -> None:
    write_instance(
        tmp_path / "a.dcm",
        make_dataset(patient_id="L1", patient_name="Müller^Hans", character_set="ISO_IR 100"),
    )
    write_instance(
        tmp_path / "b.dcm",
        make_dataset(
            patient_id="J1", patient_name="Yamada^Tarou=山田^太郎", character_set="\\ISO 2022 IR 87"
        ),
    )

    async def go() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app)
            latin = study_query(PatientID="L1", PatientName="")
            latin.SpecificCharacterSet = "ISO_IR 100"
            ((_, a),), _ = await raw_find(assoc, latin)
            # No character set in the query: the name does not fit ASCII -> UTF-8.
            ((_, b),), _ = await raw_find(assoc, study_query(PatientID="L1", PatientName=""))
            # Latin-1 query, Japanese answer: does not fit -> UTF-8.
            japanese = study_query(PatientID="J1", PatientName="")
            japanese.SpecificCharacterSet = "ISO_IR 100"
            ((_, c),), _ = await raw_find(assoc, japanese)
            await assoc.release()
        assert a.SpecificCharacterSet == "ISO_IR 100" and a.PatientName == "Müller^Hans"
        assert b.SpecificCharacterSet == "ISO_IR 192" and b.PatientName == "Müller^Hans"
        assert c.SpecificCharacterSet == "ISO_IR 192"
        assert str(c.PatientName) == "Yamada^Tarou=山田^太郎"

    run(go)


def test_extended_negotiation_answered_not_echoed(tmp_path: Path) -> None:
    async def go() -> None:
        async with serving(tmp_path) as app:
            rq = build_associate_rq(
                calling_ae="TESTSCU",
                called_ae="FINDSCP",
                contexts=list(find_contexts(Model.STUDY_ROOT)),
                max_pdu=65536,
                extended=[SOPClassExtendedNegotiation(STUDY_ROOT_FIND, b"\x01\x01\x01\x01")],
            )
            assoc = await associate("127.0.0.1", app.server.port, rq, TransportConfig())
            answer = assoc.negotiated.extended_negotiation  # type: ignore[union-attr]
            await assoc.release()
        # Relational, fuzzy and timezone: not supported; combined date-time: yes.
        assert answer == {STUDY_ROOT_FIND: b"\x00\x01\x00\x00"}

    run(go)


def test_implicit_vr_context(tmp_path: Path) -> None:
    write_instance(tmp_path / "a.dcm", make_dataset(study_uid="3.3"))

    async def go() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app, [ProposedContext(STUDY_ROOT_FIND, (uids.IMPLICIT_VR_LE,))])
            found, final = await raw_find(assoc, study_query(StudyInstanceUID="3.3", StudyDate=""))
            await assoc.release()
        assert final.status == status.SUCCESS
        assert found[0][1].StudyDate == "20240102"

    run(go)


def test_request_names_a_character_set_only_for_non_ascii_values() -> None:
    # Never a zero-length Specific Character Set (PS3.4 C.2.2.2), in either direction.
    ascii_only = build_identifier(Level.STUDY, {0x00100010: "DOE*"})
    assert 0x00080005 not in ascii_only
    assert build_identifier(Level.STUDY, {0x00100010: "Müller*"}).SpecificCharacterSet == (
        "ISO_IR 192"
    )


def test_identifiers_beyond_the_caps_are_refused_and_the_association_goes_on(
    tmp_path: Path,
) -> None:
    # Walk-through 4: 500 000 empty elements (4 MB) took serve 17 s and 230 MB to decode, on
    # the event loop; a 1 MB wildcard pattern took seconds to compile.
    from netdicom.services.find_scp import MAX_IDENTIFIER_ELEMENTS, MAX_WILDCARD_LENGTH

    write_instance(tmp_path / "a.dcm", make_dataset(study_uid="1.1"))
    many = study_query(PatientName="")
    for number in range(MAX_IDENTIFIER_ELEMENTS + 10):
        many.add_new(0x00111000 + number, "LO", "")

    async def go() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app)
            _, too_many = await raw_find(assoc, many)
            _, too_long = await raw_find(assoc, study_query(StudyDescription="*A" * 600))
            found, final = await raw_find(assoc, study_query(PatientName="*A*"))
            await assoc.release()
        assert too_many.status == too_long.status == 0xC001
        assert "elements" in (too_many.error_comment or "")
        assert str(MAX_WILDCARD_LENGTH) in (too_long.error_comment or "")
        assert final.status == status.SUCCESS and len(found) == 0

    run(go)


def test_a_uid_list_too_long_for_a_16_bit_length_is_still_the_unique_key(tmp_path: Path) -> None:
    # Walkthrough 7b: over 65,534 bytes a UI value goes as UN in explicit VR (PS3.5 6.2.2);
    # read as bytes, the unique key was dropped and every study matched, UIDs empty.
    many = [f"1.2.826.0.1.3680043.97.9.{i}" for i in range(3000)]

    async def go() -> None:
        async with serving(tmp_path) as app:
            contexts = [ProposedContext(CT, (EXPLICIT,)), *find_contexts(Model.STUDY_ROOT)]
            assoc = await connect(app, contexts)
            for n, study in enumerate(("7.1", "7.2", "7.3"), 1):
                await store_via(assoc, make_dataset(study_uid=study), n)
            identifier = study_query(StudyInstanceUID=["7.1", "7.3", *many])
            ctx = assoc.negotiated.context_for(STUDY_ROOT_FIND)  # type: ignore[union-attr]
            assert ctx is not None and ctx.transfer_syntax == EXPLICIT
            # pydicom writes the long UI as UN, as PS3.5 says.
            assert b"UN" in encode_identifier(identifier, EXPLICIT)[:40]
            pending, final = await raw_find(assoc, identifier)
            await assoc.release()
        assert sorted(str(ds.StudyInstanceUID) for _, ds in pending) == ["7.1", "7.3"]
        assert final.status == status.SUCCESS

    run(go)


def _stored_then_found(
    root: Path, stored: list[Dataset], query: Dataset
) -> tuple[list[tuple[int, Dataset]], CFindRSP]:
    """Store `stored` in a serve on `root`, then C-FIND `query` (study root): its pending
    (status, identifier) pairs and final response."""
    found: list[tuple[list[tuple[int, Dataset]], CFindRSP]] = []

    async def go() -> None:
        async with serving(root) as app:
            contexts = [ProposedContext(CT, (EXPLICIT,)), *find_contexts(Model.STUDY_ROOT)]
            assoc = await connect(app, contexts)
            for message_id, ds in enumerate(stored, 1):
                await store_via(assoc, ds, message_id)
            found.append(await raw_find(assoc, query))
            await assoc.release()

    run(go)
    return found[0]


def test_a_computed_key_below_its_level_is_not_supported_there(tmp_path: Path) -> None:
    # Walkthrough 7b: ModalitiesInStudy asked at SERIES level came back empty with FF00 and,
    # given a value, matched nothing: FF01 and not matched, as any key serve cannot use.
    query = study_query(StudyInstanceUID="7.9", SeriesInstanceUID="", ModalitiesInStudy="CT")
    query.QueryRetrieveLevel = "SERIES"
    pending, final = _stored_then_found(
        tmp_path, [make_dataset(study_uid="7.9", series_uid="7.9.1")], query
    )
    assert [(code, str(ds.SeriesInstanceUID)) for code, ds in pending] == [
        (status.PENDING_WARNING, "7.9.1")
    ]
    assert final.status == status.SUCCESS


def test_a_private_creator_is_echoed_with_its_private_key(tmp_path: Path) -> None:
    # Walkthrough 7c: the Private Creator came back empty, and the private key that followed
    # belonged to no block (pydicom's private_block() raised KeyError on the response).
    query = study_query(StudyInstanceUID="7.8")
    query.private_block(0x0029, "ACME", create=True).add_new(0x11, "UL", None)
    ((code, match),), _ = _stored_then_found(tmp_path, [make_dataset(study_uid="7.8")], query)
    assert code == status.PENDING_WARNING  # the private key itself is not answered
    assert match[0x00290010].value == "ACME"
    assert match.private_block(0x0029, "ACME")[0x11].value is None


def test_a_patients_own_attributes_are_the_patients_in_every_study(tmp_path: Path) -> None:
    # Walkthrough 7b: Other Patient IDs (and the other Patient module attributes the index
    # has no column for) were read from each study's first instance: a study-level search by
    # an alias ID found one of the patient's studies. They are the patient's first instance's.
    first = make_dataset(patient_id="PALIAS", study_uid="7.21")
    first.OtherPatientIDs = "OPA"
    later = make_dataset(patient_id="PALIAS", study_uid="7.22")  # none of its own
    pending, final = _stored_then_found(
        tmp_path, [first, later], study_query(OtherPatientIDs="OPA", StudyInstanceUID="")
    )
    found = {str(ds.StudyInstanceUID): str(ds.OtherPatientIDs) for _, ds in pending}
    assert found == {"7.21": "OPA", "7.22": "OPA"}
    assert final.status == status.SUCCESS
