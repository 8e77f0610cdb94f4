"""The Storage SCP in process: a netdicom client stores into `ServeApp` over 127.0.0.1.

Covers what lands on disk (meta + the data set bytes unchanged), every failure status, that
failures leave no file, final or temporary, and that the association stays usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence

from netdicom.archive.writer import TEMP_DIR, DuplicatePolicy, Outcome
from netdicom.core import uids
from netdicom.core.acse import ProposedContext
from netdicom.core.dimse import CStoreRQ, CStoreRSP, encode_command
from netdicom.core.errors import NetDicomError
from netdicom.core.pdu import PDUType
from netdicom.services.peer import Peer
from netdicom.services.serve import ServeApp, ServeConfig
from netdicom.services.session import ClientOptions, open_association, receive_response
from netdicom.services.store_scp import (
    HELD_LIMIT,
    LIMIT_EXCEEDED,
    SOP_INSTANCE_MISMATCH,
    SPOOL_ABOVE,
    UNSAFE_UID,
    StoredInstance,
)
from netdicom.transport.association import Association
from netdicom.transport.config import TransportConfig
from netdicom.transport.faults import Direction, Fault, FaultAction, FaultInjector
from tests.dicomfiles import CT, make_dataset, write_instance
from tests.leftovers import temp_files

EXPLICIT = uids.EXPLICIT_VR_LE
IMPLICIT = uids.IMPLICIT_VR_LE
DEFLATED = uids.DEFLATED_EXPLICIT_VR_LE


def encode(ds: Dataset, ts: str = EXPLICIT) -> bytes:
    fp = DicomBytesIO()
    fp.is_implicit_VR = ts == IMPLICIT
    fp.is_little_endian = ts != uids.EXPLICIT_VR_BE
    write_dataset(fp, ds)
    data = fp.getvalue()
    if ts == DEFLATED:
        engine = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = engine.compress(data) + engine.flush()
        data += b"\x00" * (len(data) % 2)
    return data


def archive_files(root: Path) -> list[Path]:
    """Instances stored, plus any temporary file left behind (other hidden folders, such as
    the query index, are not ours to count)."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and (p.parent.name == TEMP_DIR or not p.relative_to(root).parts[0].startswith("."))
    )


@contextlib.asynccontextmanager
async def serving(root: Path, **options: Any) -> AsyncIterator[ServeApp]:
    # A small max PDU: data sets of a few KB arrive in several fragments.
    options.setdefault("transport", TransportConfig(max_pdu=16384))
    app = ServeApp(ServeConfig(directory=root, port=0, **options))
    await app.server.start()
    task = asyncio.create_task(app.server.serve_forever())
    try:
        yield app
    finally:
        await app.server.close(grace=1.0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def connect(
    app: ServeApp,
    contexts: list[ProposedContext] | None = None,
    faults: FaultInjector | None = None,
) -> Association:
    proposed = contexts or [ProposedContext(CT, (EXPLICIT,))]
    return await open_association(
        Peer("127.0.0.1", app.server.port, "NETDICOM"),
        ClientOptions(calling_ae="TESTSCU", transport=TransportConfig(max_pdu=16384)),
        proposed,
        faults=faults,
    )


async def c_store(
    assoc: Association, data: bytes, sop_instance: str, sop_class: str = CT, context_id: int = 1
) -> CStoreRSP:
    message_id = assoc.message_ids.next()
    await assoc.send_message(context_id, CStoreRQ(message_id, sop_class, sop_instance), data)
    response, _ = await receive_response(assoc, message_id, 10)
    assoc.message_ids.release(message_id)
    assert isinstance(response, CStoreRSP)
    return response


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 30))


@pytest.mark.parametrize("ts", [EXPLICIT, IMPLICIT, uids.EXPLICIT_VR_BE, DEFLATED])
@pytest.mark.parametrize("fsync", [True, False])
@pytest.mark.parametrize("side", [128, 400])
def test_stored_file_holds_the_received_bytes(
    tmp_path: Path, ts: str, fsync: bool, side: int
) -> None:
    # 128: 32 KB of pixels, 3 fragments at 16 KB PDUs, below SPOOL_ABOVE (held, then written
    # by the group commit when durable); 400: 320 KB, held first, then handed to the spool
    # once past SPOOL_ABOVE.
    ds = make_dataset(rows=side, columns=side)
    ds.ReferencedImageSequence = Sequence([Dataset()])
    data = encode(ds, ts)
    seen: list[StoredInstance] = []

    async def main() -> None:
        async with serving(tmp_path, fsync=fsync) as app:
            app.storage.on_stored.append(seen.append)
            assoc = await connect(app, [ProposedContext(CT, (ts,))])
            response = await c_store(assoc, data, ds.SOPInstanceUID)
            assert response.status == 0x0000
            await assoc.release()
            # Durably every instance is synced and named by the group commit; the spool's
            # threads write those past SPOOL_ABOVE (and, without fsync, any in fragments).
            large = len(data) + 300 > SPOOL_ABOVE
            in_fragments = len(data) > 16384  # deflated, 128 and 400 fit in one
            assert app.storage._group_commit.groups == (1 if fsync else 0)
            used_spool = app.storage._spool.peak_in_flight > 0
            assert used_spool == (large or (in_fragments and not fsync))

    run(main)
    expected = tmp_path / "PAT001" / ds.StudyInstanceUID / ds.SeriesInstanceUID
    path = expected / f"{ds.SOPInstanceUID}.dcm"
    assert archive_files(tmp_path) == [path]
    raw = path.read_bytes()
    assert raw.endswith(data)
    stored = dcmread(path)
    meta = stored.file_meta
    assert meta.TransferSyntaxUID == ts
    assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert meta.MediaStorageSOPClassUID == CT
    assert meta.SourceApplicationEntityTitle == "TESTSCU"
    assert stored.PatientName == "DOE^JOHN"
    assert len(raw) == len(data) + 132 + 12 + meta.FileMetaInformationGroupLength
    assert seen == [
        StoredInstance(path, CT, ds.SOPInstanceUID, ts, "TESTSCU", len(data), Outcome.STORED)
    ]


def test_small_instances_are_spooled_while_too_much_is_held(tmp_path: Path) -> None:
    # Complete small instances wait in memory for their group; past HELD_LIMIT over the
    # whole server (other associations' instances, here a stand-in count), a new one is
    # written through the spool as it arrives instead: memory stays bounded whatever window
    # or number of associations peers ask for.
    ds = make_dataset(rows=16, columns=16)
    data = encode(ds)

    async def main() -> None:
        async with serving(tmp_path) as app:
            archive = app.storage.archive
            assoc = await connect(app)
            first = await c_store(assoc, data, ds.SOPInstanceUID)
            assert first.status == 0x0000
            assert app.storage._spool.peak_in_flight == 0  # held, then written by the group
            assert archive.held == 0  # and no longer counted once written
            archive.hold(HELD_LIMIT + 1)
            second = make_dataset(rows=16, columns=16)
            response = await c_store(assoc, encode(second), second.SOPInstanceUID)
            assert response.status == 0x0000
            assert app.storage._spool.peak_in_flight > 0
            assert archive.held == HELD_LIMIT + 1
            archive.hold(-(HELD_LIMIT + 1))
            await assoc.release()

    run(main)
    assert len(archive_files(tmp_path)) == 2


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")
def test_failures_keep_nothing_and_the_association_stays_usable(tmp_path: Path) -> None:
    good = make_dataset()
    mismatch = make_dataset()
    traversal = make_dataset(sop_instance_uid="1.2.3")
    bad_study = make_dataset(study_uid="../../../etc")
    deep_item = Dataset()
    for _ in range(40):
        outer = Dataset()
        outer.ReferencedImageSequence = Sequence([deep_item])
        deep_item = outer
    deep = make_dataset()
    deep.ReferencedSeriesSequence = Sequence([deep_item])
    no_uid = make_dataset()
    del no_uid.SOPInstanceUID
    other_class = make_dataset(sop_class="1.2.840.10008.5.1.4.1.1.4")
    no_study = make_dataset()
    del no_study.StudyInstanceUID
    empty_series = make_dataset()
    empty_series.SeriesInstanceUID = ""

    async def main() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app)
            cases = [
                (encode(mismatch), "1.2.999", SOP_INSTANCE_MISMATCH),
                (encode(traversal), "../x", UNSAFE_UID),
                (encode(traversal), "/etc/x", UNSAFE_UID),
                (encode(bad_study), bad_study.SOPInstanceUID, UNSAFE_UID),
                (encode(deep), deep.SOPInstanceUID, LIMIT_EXCEEDED),
                (encode(no_uid), "1.2.998", SOP_INSTANCE_MISMATCH),
                (encode(other_class), other_class.SOPInstanceUID, 0xA900),
                # Stored, they could be neither found nor retrieved (walkthrough 6b).
                (encode(no_study), no_study.SOPInstanceUID, 0xA900),
                (encode(empty_series), empty_series.SOPInstanceUID, 0xA900),
                (encode(good)[:-6] + b"\x08\x00", good.SOPInstanceUID, 0xC000),
                (b"\x08\x00\x18\x00ZZ" + bytes(20), "1.2.3", 0xC000),
            ]
            for data, sop_instance, code in cases:
                response = await c_store(assoc, data, sop_instance)
                assert response.status == code, (sop_instance, response)
                assert response.error_comment
                assert archive_files(tmp_path) == []
            # C-STORE on a context whose abstract syntax is another SOP class: 0122.
            response = await c_store(assoc, encode(good), good.SOPInstanceUID, sop_class="1.2.3")
            assert response.status == 0x0122
            # Same association, a good instance: stored.
            response = await c_store(assoc, encode(good), good.SOPInstanceUID)
            assert response.status == 0x0000
            await assoc.release()

    run(main)
    assert [p.name for p in archive_files(tmp_path)] == [f"{good.SOPInstanceUID}.dcm"]
    assert not (tmp_path.parent / "etc").exists()


@pytest.mark.parametrize("side", [8, 400])
def test_an_instance_without_study_is_refused_unless_it_belongs_to_no_patient(
    tmp_path: Path, side: int
) -> None:
    # A patient IOD without Study Instance UID was stored with success and could never be
    # found or retrieved; a non-patient object (PS3.4 Annex GG) has no study to name. `side`
    # 400: ~320 KB, spooled to disk as it arrives, refused all the same.
    hanging_protocol = "1.2.840.10008.5.1.4.38.1"
    orphan = make_dataset(rows=side, columns=side)
    del orphan.StudyInstanceUID
    protocol = Dataset()
    protocol.SOPClassUID = hanging_protocol
    protocol.SOPInstanceUID = "1.2.826.0.1.3680043.10.54.1"
    protocol.HangingProtocolName = "CHEST"

    async def main() -> None:
        async with serving(tmp_path) as app:
            contexts = [
                ProposedContext(CT, (EXPLICIT,)),
                ProposedContext(hanging_protocol, (EXPLICIT,)),
            ]
            assoc = await connect(app, contexts)
            refused = await c_store(assoc, encode(orphan), orphan.SOPInstanceUID)
            assert refused.status == 0xA900
            assert refused.error_comment == "data set has no Study Instance UID (Type 1)"
            assert archive_files(tmp_path) == []
            stored = await c_store(
                assoc, encode(protocol), protocol.SOPInstanceUID, hanging_protocol, context_id=3
            )
            assert stored.status == 0x0000
            await assoc.release()

    run(main)
    assert [p.name for p in archive_files(tmp_path)] == [f"{protocol.SOPInstanceUID}.dcm"]


def test_a_uid_mismatch_marks_the_cut_and_logs_both_uids(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Walkthrough 7c: the data set's UID was cut to 24 characters without a mark, in the
    # Error Comment and in the log: it looked whole, and five instances read alike.
    sent = make_dataset(sop_instance_uid="1.2.826.0.1.3680043.8.498.1234567890123456789")

    async def main() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app)
            response = await c_store(assoc, encode(sent), "1.2.999")
            await assoc.release()
        assert response.status == SOP_INSTANCE_MISMATCH
        assert (
            response.error_comment
            == "data set SOP Instance UID '1.2.826.0.1.3680043.8...' != command"
        )

    with caplog.at_level("WARNING", logger="netdicom"):
        run(main)
    assert (
        f"data set SOP Instance UID '{sent.SOPInstanceUID}' is not the command's '1.2.999'"
        in caplog.text
    )


def test_full_disk_answers_a700_and_the_next_store_succeeds(tmp_path: Path) -> None:
    first, second = make_dataset(rows=128, columns=128), make_dataset()
    full = True

    def disk(fd: int, data: memoryview) -> int:
        nonlocal full
        # The disk is full for the first write of pixel data (the file meta alone, ~200
        # bytes, fits), then has room again.
        if full and len(data) > 4096:
            full = False
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    async def main() -> None:
        async with serving(tmp_path) as app:
            app.archive.file_write = disk
            assoc = await connect(app)
            response = await c_store(assoc, encode(first), first.SOPInstanceUID)
            assert response.status == 0xA700
            assert "space" in (response.error_comment or "")
            assert archive_files(tmp_path) == []
            response = await c_store(assoc, encode(second), second.SOPInstanceUID)
            assert response.status == 0x0000
            await assoc.release()

    run(main)
    assert [p.name for p in archive_files(tmp_path)] == [f"{second.SOPInstanceUID}.dcm"]


@pytest.mark.parametrize("how", ["abort", "close"])
def test_sender_gone_mid_data_set_leaves_nothing(tmp_path: Path, how: str) -> None:
    # 2 MB of pixels: beyond the first batch the spool writes, so the data set is on its way
    # into a temporary file when the sender goes.
    ds = make_dataset(rows=1024, columns=1024)
    data = encode(ds)
    faults = (
        FaultInjector(Fault(FaultAction.CLOSE, Direction.SEND, PDUType.P_DATA_TF, occurrence=3))
        if how == "close"
        else None
    )

    async def main() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app, faults=faults)
            if how == "close":
                with contextlib.suppress(NetDicomError):
                    await c_store(assoc, data, ds.SOPInstanceUID)
            else:
                rq = CStoreRQ(assoc.message_ids.next(), CT, ds.SOPInstanceUID)
                assoc._write_pdv(1, True, True, encode_command(rq))
                for start in range(0, 1_500_000, 16000):
                    assoc._write_pdv(1, False, False, data[start : start + 16000])
                await assoc._drain()
                await asyncio.sleep(0.2)
                assert len(temp_files(tmp_path)) == 1  # streaming into the archive
                assoc.abort()
            for _ in range(100):
                if not app.server.associations:
                    break
                await asyncio.sleep(0.02)

    run(main)
    assert archive_files(tmp_path) == []
    assert temp_files(tmp_path) == []  # an unnamed temporary file is closed too


@pytest.mark.parametrize(
    ("policy", "names"),
    [
        (DuplicatePolicy.KEEP, ["{}.dcm"]),
        (DuplicatePolicy.OVERWRITE, ["{}.dcm"]),
        (DuplicatePolicy.RENAME, ["{}.dcm", "{}_1.dcm"]),
    ],
)
def test_duplicates_all_answer_success(
    tmp_path: Path, policy: DuplicatePolicy, names: list[str]
) -> None:
    ds = make_dataset()
    outcomes: list[Outcome] = []

    async def main() -> None:
        async with serving(tmp_path, on_duplicate=policy) as app:
            app.storage.on_stored.append(lambda stored: outcomes.append(stored.outcome))
            assoc = await connect(app)
            for _ in range(2):
                assert (await c_store(assoc, encode(ds), ds.SOPInstanceUID)).status == 0
            await assoc.release()

    run(main)
    assert sorted(p.name for p in archive_files(tmp_path)) == sorted(
        n.format(ds.SOPInstanceUID) for n in names
    )
    assert outcomes[0] is Outcome.STORED and outcomes[1] is not Outcome.STORED


@pytest.mark.parametrize(
    ("policy", "folders", "outcome", "indexed"),
    [
        (DuplicatePolicy.KEEP, ["WRONG01"], Outcome.KEPT_EXISTING, "WRONG01"),
        (DuplicatePolicy.OVERWRITE, ["RIGHT01"], Outcome.OVERWROTE, "RIGHT01"),
        (DuplicatePolicy.RENAME, ["RIGHT01", "WRONG01"], Outcome.RENAMED, "WRONG01"),
    ],
)
def test_duplicates_are_found_by_uid_when_the_layout_moves_them(
    tmp_path: Path, policy: DuplicatePolicy, folders: list[str], outcome: Outcome, indexed: str
) -> None:
    # Walkthrough 5: sent again with a corrected PatientID, an instance went to another path
    # of the default layout: keep and overwrite each left two files of it, and the index
    # answered the old patient (with the new study attributes).
    first = make_dataset(patient_id="WRONG01", patient_name="Wrong^Patient")
    second = make_dataset(patient_id="RIGHT01", patient_name="Right^Patient",
                          study_uid=first.StudyInstanceUID, series_uid=first.SeriesInstanceUID,
                          sop_instance_uid=first.SOPInstanceUID)  # fmt: skip
    outcomes: list[Outcome] = []

    async def main() -> None:
        async with serving(tmp_path, on_duplicate=policy) as app:
            app.storage.on_stored.append(lambda stored: outcomes.append(stored.outcome))
            assoc = await connect(app)
            for ds in (first, second):
                assert (await c_store(assoc, encode(ds), ds.SOPInstanceUID)).status == 0
            await assoc.release()
            app.flush_index()
            paths = app.index.sop_instance_paths([first.SOPInstanceUID])
            assert paths[first.SOPInstanceUID].split("/")[0] == indexed
            assert app.index.counts()["patient"] == 1

    run(main)
    assert outcomes == [Outcome.STORED, outcome]
    files = archive_files(tmp_path)
    assert sorted(p.relative_to(tmp_path).parts[0] for p in files) == folders
    # Nothing left of a version that went (its folders included).
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == folders


@pytest.mark.parametrize(
    ("policy", "kept", "outcome"),
    [
        (DuplicatePolicy.OVERWRITE, "RIGHT01", Outcome.OVERWROTE),
        (DuplicatePolicy.KEEP, "WRONG01", Outcome.KEPT_EXISTING),
    ],
)
def test_a_copy_left_by_a_crash_at_the_new_path_is_settled_when_sent_again(
    tmp_path: Path, policy: DuplicatePolicy, kept: str, outcome: Outcome
) -> None:
    # Walkthrough 6a: serve killed between placing the corrected version (another path) and
    # removing the first one left both. Sent again, the new path was found taken (overwrite
    # replaced it, keep kept it) and the other copy was never looked for: two files of one
    # instance for good, and an index rebuild could bring back the version overwritten.
    first = make_dataset(patient_id="WRONG01", patient_name="Wrong^Patient")
    second = make_dataset(patient_id="RIGHT01", patient_name="Right^Patient",
                          study_uid=first.StudyInstanceUID, series_uid=first.SeriesInstanceUID,
                          sop_instance_uid=first.SOPInstanceUID)  # fmt: skip
    uid = first.SOPInstanceUID
    outcomes: list[Outcome] = []

    indexed: list[str] = []

    async def store(ds: Any) -> None:
        async with serving(tmp_path, on_duplicate=policy) as app:
            app.storage.on_stored.append(lambda stored: outcomes.append(stored.outcome))
            assoc = await connect(app)
            assert (await c_store(assoc, encode(ds), uid)).status == 0
            await assoc.release()
            app.flush_index()
            indexed.append(app.index.sop_instance_paths([uid])[uid].split("/")[0])

    run(lambda: store(first))
    leftover = tmp_path / "RIGHT01" / second.StudyInstanceUID / second.SeriesInstanceUID
    write_instance(leftover / f"{uid}.dcm", second)  # what the crash left
    run(lambda: store(second))
    assert indexed == ["WRONG01", kept] and outcomes[-1] is outcome
    assert [p.relative_to(tmp_path).parts[0] for p in archive_files(tmp_path)] == [kept]


async def _store_damage_store(app: ServeApp, root: Path, first: Any, second: Any) -> Path:
    """Store `first`, cut its file in half, store `second` (the same instance); the cut file."""
    assoc = await connect(app)
    assert (await c_store(assoc, encode(first), first.SOPInstanceUID)).status == 0
    (stored,) = archive_files(root)
    stored.write_bytes(stored.read_bytes()[: stored.stat().st_size // 2])
    assert (await c_store(assoc, encode(second), second.SOPInstanceUID)).status == 0
    await assoc.release()
    return stored


@pytest.mark.parametrize("same_path", [True, False])
def test_rename_indexes_the_good_copy_when_the_first_is_damaged(
    tmp_path: Path, same_path: bool
) -> None:
    # Both copies kept, but the damaged first one stayed the indexed one: every C-GET failed.
    first = make_dataset(patient_id="WRONG01")
    second = make_dataset(patient_id="WRONG01" if same_path else "RIGHT01",
                          study_uid=first.StudyInstanceUID, series_uid=first.SeriesInstanceUID,
                          sop_instance_uid=first.SOPInstanceUID)  # fmt: skip

    async def main() -> None:
        async with serving(tmp_path, on_duplicate=DuplicatePolicy.RENAME) as app:
            stored = await _store_damage_store(app, tmp_path, first, second)
            app.flush_index()
            indexed = app.index.sop_instance_paths([first.SOPInstanceUID])[first.SOPInstanceUID]
            assert tmp_path / indexed != stored  # the good copy is the indexed one
            assert (tmp_path / indexed).stat().st_size > stored.stat().st_size

    run(main)
    assert len(archive_files(tmp_path)) == 2  # both kept, as rename does


def test_keep_replaces_a_damaged_copy_found_by_uid_at_another_path(tmp_path: Path) -> None:
    # The new copy (another PatientID, so another path) was dropped and the damaged first
    # copy kept, with success: the sender's good data was lost.
    first = make_dataset(patient_id="WRONG01")
    second = make_dataset(patient_id="RIGHT01", study_uid=first.StudyInstanceUID,
                          series_uid=first.SeriesInstanceUID,
                          sop_instance_uid=first.SOPInstanceUID)  # fmt: skip
    outcomes: list[Outcome] = []

    async def main() -> None:
        async with serving(tmp_path, on_duplicate=DuplicatePolicy.KEEP) as app:
            app.storage.on_stored.append(lambda stored: outcomes.append(stored.outcome))
            await _store_damage_store(app, tmp_path, first, second)

    run(main)
    assert outcomes == [Outcome.STORED, Outcome.REPLACED_DAMAGED]
    (kept,) = archive_files(tmp_path)
    assert kept.relative_to(tmp_path).parts[0] == "RIGHT01"


def test_failing_hook_answers_processing_failure(tmp_path: Path) -> None:
    ds = make_dataset()

    async def broken(stored: StoredInstance) -> None:
        raise RuntimeError("index unavailable")

    async def main() -> None:
        async with serving(tmp_path) as app:
            app.storage.on_stored.append(broken)
            assoc = await connect(app)
            response = await c_store(assoc, encode(ds), ds.SOPInstanceUID)
            assert response.status == 0x0110
            await assoc.release()

    run(main)


@pytest.mark.parametrize("fsync", [True, False])
def test_failing_placed_hook_answers_processing_failure_and_keeps_the_file(
    tmp_path: Path, fsync: bool
) -> None:
    import threading

    ds = make_dataset()
    threads: list[str] = []

    def broken(stored: StoredInstance) -> None:
        threads.append(threading.current_thread().name)
        raise RuntimeError("index unavailable")

    async def main() -> None:
        async with serving(tmp_path, fsync=fsync) as app:
            app.storage.on_placed.append(broken)
            assoc = await connect(app)
            response = await c_store(assoc, encode(ds), ds.SOPInstanceUID)
            assert response.status == 0x0110
            assert "not registered" in (response.error_comment or "")
            await assoc.release()

    run(main)
    assert [p.name for p in archive_files(tmp_path)] == [f"{ds.SOPInstanceUID}.dcm"]
    # With fsync the file is placed, and the hook run, off the event loop.
    assert (threads[0] != "MainThread") is fsync


def test_layout_option(tmp_path: Path) -> None:
    ds = make_dataset(modality="MR")

    async def main() -> None:
        async with serving(tmp_path, layout="{Modality}/{SOPInstanceUID}") as app:
            assoc = await connect(app)
            assert (await c_store(assoc, encode(ds), ds.SOPInstanceUID)).status == 0
            await assoc.release()

    run(main)
    assert archive_files(tmp_path) == [tmp_path / "MR" / ds.SOPInstanceUID]


def test_concurrent_associations(tmp_path: Path) -> None:
    datasets = [make_dataset(instance_number=n) for n in range(24)]

    async def sender(app: ServeApp, chunk: list[Dataset]) -> None:
        assoc = await connect(app)
        for ds in chunk:
            assert (await c_store(assoc, encode(ds), ds.SOPInstanceUID)).status == 0
        await assoc.release()

    async def main() -> None:
        async with serving(tmp_path) as app:
            await asyncio.gather(*(sender(app, datasets[i::6]) for i in range(6)))

    run(main)
    assert len(archive_files(tmp_path)) == 24


def test_an_instance_placed_as_the_association_ends_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Walk-through 4: an instance placed as the shutdown grace ran out was kept and indexed,
    # but its "stored" line never came (that hook ran after placing, on the cancelled task).
    import logging
    import threading

    placing = threading.Event()
    release = threading.Event()

    def slow(stored: object) -> None:
        placing.set()
        release.wait(5)

    async def go() -> None:
        async with serving(tmp_path) as app:
            app.storage.on_placed.append(slow)
            assoc = await connect(app)
            ds = make_dataset(sop_instance_uid="1.2.826.0.1.77.5")
            sending = asyncio.ensure_future(
                c_store(assoc, encode(ds, EXPLICIT), "1.2.826.0.1.77.5")
            )
            assert await asyncio.to_thread(placing.wait, 10)
            threading.Timer(0.3, release.set).start()
            await app.server.close(grace=0)
            with contextlib.suppress(Exception):
                await sending

    with caplog.at_level(logging.INFO, logger="netdicom"):
        run(go)
    assert any("stored 1.2.826.0.1.77.5" in r.getMessage() for r in caplog.records)
    assert list(tmp_path.rglob("1.2.826.0.1.77.5.dcm"))


def test_stores_are_refused_while_the_index_cannot_be_written(tmp_path: Path) -> None:
    # Walkthrough 6a: on a full disk small instances still fit, but their index rows did not:
    # serve answered success and C-FIND went on without them (a C-MOVE by another system
    # missed them, without a word). A full database is simulated with max_page_count.
    def instance(number: int) -> Any:
        return make_dataset(patient_id=f"P{number}", study_uid=f"8.{number}")

    async def main() -> None:
        async with serving(tmp_path) as app:
            assoc = await connect(app)
            store = [instance(n) for n in range(40)]
            assert (await c_store(assoc, encode(store[0]), store[0].SOPInstanceUID)).status == 0
            app.flush_index()
            conn = app.index._conn
            assert conn is not None
            (pages,) = conn.execute("PRAGMA page_count").fetchone()
            conn.execute(f"PRAGMA max_page_count = {pages}")
            # Accepted before the index was known to be full: on disk, indexed later.
            for ds in store[4:]:
                assert (await c_store(assoc, encode(ds), ds.SOPInstanceUID)).status == 0
            app.flush_index()
            assert app.index.write_failing
            refused = await c_store(assoc, encode(store[2]), store[2].SOPInstanceUID)
            assert refused.status == 0xA700
            assert "index cannot be written" in (refused.error_comment or "")
            # A C-FIND meanwhile gives its matches, then says they may be incomplete.
            from netdicom.archive.matching import Level, Model
            from netdicom.services.find_scu import build_identifier, find, find_contexts

            finder = await connect(app, list(find_contexts(Model.STUDY_ROOT)))
            identifier = build_identifier(Level.STUDY, {0x0020000D: ""})
            result = await find(finder, Model.STUDY_ROOT, identifier, lambda ds, code: None)
            await finder.release()
            assert result.status == 0xC002 and result.matches >= 1
            assert "not yet indexed" in (result.error_comment or "")
            # A C-GET of an instance waiting for the index says so too (it said Success, 0).
            from netdicom.archive.layout import Layout
            from netdicom.archive.writer import Archive
            from netdicom.services.get_scu import get, get_contexts
            from netdicom.services.retrieve_common import RetrieveRequest
            from netdicom.services.retrieve_common import build_identifier as get_identifier
            from netdicom.services.store_scp import StorageSCP

            proposal = get_contexts(Model.STUDY_ROOT, [CT])
            getter = await open_association(
                Peer("127.0.0.1", app.server.port, "NETDICOM"),
                ClientOptions(calling_ae="GETTER"),
                proposal.contexts,
                roles=proposal.roles,
            )
            waiting = RetrieveRequest(
                Level.STUDY, (), 0x0020000D, (str(store[5].StudyInstanceUID),)
            )
            receiver = StorageSCP(
                Archive(tmp_path.parent / f"{tmp_path.name}-got"),
                Layout.parse("{SOPInstanceUID}.dcm"),
            )
            outcome = await get(
                getter, Model.STUDY_ROOT, get_identifier(waiting, Model.STUDY_ROOT), receiver
            )
            await getter.release()
            assert outcome.status == 0xC002
            assert "not yet indexed" in (outcome.error_comment or "")
            conn.execute("PRAGMA max_page_count = 1000000")  # space freed
            for _ in range(50):  # a refused store tried the index again
                await asyncio.sleep(0.1)
                if not app.index.write_failing:
                    break
            else:
                await c_store(assoc, encode(store[2]), store[2].SOPInstanceUID)  # one more try
                await asyncio.sleep(1.5)
            assert (await c_store(assoc, encode(store[3]), store[3].SOPInstanceUID)).status == 0
            await assoc.release()
            app.flush_index()
            counts = app.index.counts()
            assert counts["instance"] == 38  # not 2 (refused, not kept), nor 1 (never sent)

    run(main)
    assert len(archive_files(tmp_path)) == 38
