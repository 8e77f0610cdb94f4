"""C-GET and C-MOVE SCP (serve) against our own SCUs, in process on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from netdicom.archive.layout import DEFAULT_LAYOUT, Layout
from netdicom.archive.matching import Level, Model
from netdicom.archive.writer import Archive
from netdicom.core import uids
from netdicom.core.acse import ProposedContext
from netdicom.core.datasets import probe_file
from netdicom.core.dimse import status
from netdicom.core.errors import NetDicomError
from netdicom.core.pdu import AssociateRJ
from netdicom.services.get_scu import (
    COMPRESSED_SYNTAXES,
    CURATED_SOP_CLASSES,
    get,
    get_contexts,
)
from netdicom.services.move_scu import MoveReceiver, move
from netdicom.services.peer import Peer
from netdicom.services.retrieve_common import Progress, RetrieveRequest, build_identifier
from netdicom.services.retrieve_scp import NO_ACCEPTED_CONTEXT
from netdicom.services.serve import ServeApp, ServeConfig
from netdicom.services.session import ClientOptions, open_association
from netdicom.services.store_scp import StorageSCP
from netdicom.transport.association import Association
from netdicom.transport.config import Timeouts, TransportConfig
from netdicom.transport.server import Server
from tests.dicomfiles import CT, MR, make_dataset, make_files, write_instance
from tests.peers import free_port

STUDY = "1.2.826.0.1.9.1"
STUDY_UID = 0x0020000D
FAST = TransportConfig(timeouts=Timeouts(connect=5, acse=5, dimse=5))


@pytest.fixture
def source(tmp_path: Path) -> list[Path]:
    return make_files(tmp_path / "serve", 3, study_uid=STUDY)


def _app(tmp_path: Path, remotes: dict[str, Peer]) -> ServeApp:
    return ServeApp(
        ServeConfig(directory=tmp_path / "serve", port=0, remotes=remotes, transport=FAST)
    )


@contextlib.asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[tuple[ServeApp, MoveReceiver]]:
    """serve (with DEST = a MoveReceiver and DEAD = a port nothing listens on)."""
    rx = MoveReceiver(tmp_path / "moved", ae_title="DEST", host="127.0.0.1", transport=FAST)
    await rx.start()
    app = _app(
        tmp_path,
        {
            "DEST": Peer("127.0.0.1", rx.port, "DEST"),
            "DEAD": Peer("127.0.0.1", free_port(), "DEAD"),
        },
    )
    await app.server.start()
    try:
        yield app, rx
    finally:
        await app.server.close()
        await rx.finish(0)


def run(body: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(body(), 60))


def _study(uid: str = STUDY) -> Dataset:
    return build_identifier(RetrieveRequest(Level.STUDY, (), STUDY_UID, (uid,)), Model.STUDY_ROOT)


def _dataset_bytes(path: Path) -> bytes:
    info = probe_file(path)
    return path.read_bytes()[info.dataset_offset :]


async def _get_assoc(app: ServeApp, *, roles: bool = True) -> Association:
    proposal = get_contexts(Model.STUDY_ROOT, [CT])
    return await open_association(
        Peer("127.0.0.1", app.server.port, "ARCHIVE"),
        ClientOptions(calling_ae="GETTER", transport=FAST),
        proposal.contexts,
        roles=proposal.roles if roles else None,
    )


def test_get_returns_every_instance_bit_for_bit(tmp_path: Path, source: list[Path]) -> None:
    async def body() -> None:
        async with world(tmp_path) as (app, _):
            assoc = await _get_assoc(app)
            out = tmp_path / "out"
            storage = StorageSCP(Archive(out), Layout.parse(DEFAULT_LAYOUT))
            seen: list[Progress] = []
            result = await get(
                assoc, Model.STUDY_ROOT, _study(), storage, on_progress=seen.append, timeout=5
            )
            await assoc.release()
        assert result.status == status.SUCCESS
        assert (result.final.completed, result.final.failed, result.final.warning) == (3, 0, 0)
        assert result.final.remaining is None  # not in a final Success response
        assert [p.remaining for p in seen] == [2, 1]
        assert [p.completed for p in seen] == [1, 2]
        retrieved = {probe_file(p).sop_instance_uid: _dataset_bytes(p) for p in out.rglob("*.dcm")}
        original = {probe_file(p).sop_instance_uid: _dataset_bytes(p) for p in source}
        assert retrieved == original
        # PS3.10 7.1: the Source AE Title is the AE that sent the instance, the peer, not us.
        from pydicom import dcmread

        sources = {dcmread(p).file_meta.SourceApplicationEntityTitle for p in out.rglob("*.dcm")}
        assert sources == {"ARCHIVE"}

    run(body)


@pytest.mark.parametrize("uid", ["", "*", "1.2.826.*"])
def test_empty_or_wildcard_unique_key_gets_a900(
    tmp_path: Path, source: list[Path], uid: str
) -> None:
    async def body() -> None:
        async with world(tmp_path) as (app, _):
            assoc = await _get_assoc(app)
            ds = Dataset()
            ds.QueryRetrieveLevel = "STUDY"
            ds.add_new(STUDY_UID, "UI", uid or None)
            storage = StorageSCP(Archive(tmp_path / "out"))
            result = await get(assoc, Model.STUDY_ROOT, ds, storage, timeout=5)
            await assoc.release()
        assert result.status == status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
        assert result.error_comment and "unique key" in result.error_comment
        assert not result.received

    run(body)


def test_no_match_is_success_with_nothing(tmp_path: Path, source: list[Path]) -> None:
    async def body() -> None:
        async with world(tmp_path) as (app, _):
            assoc = await _get_assoc(app)
            storage = StorageSCP(Archive(tmp_path / "out"))
            result = await get(assoc, Model.STUDY_ROOT, _study("1.2.3.999"), storage, timeout=5)
            await assoc.release()
        assert result.status == status.SUCCESS and result.final.completed == 0

    run(body)


def test_get_without_scp_role_fails_each_instance(tmp_path: Path, source: list[Path]) -> None:
    async def body() -> None:
        async with world(tmp_path) as (app, _):
            assoc = await _get_assoc(app, roles=False)
            storage = StorageSCP(Archive(tmp_path / "out"))
            result = await get(assoc, Model.STUDY_ROOT, _study(), storage, timeout=5)
            await assoc.release()
        # PS3.4 C.4.3.1: without the SCP role no C-STORE may be sent: each sub-op fails, for
        # want of a context, which is no lack of resources (C.4.3.3.1): C003, not A702.
        assert result.status == NO_ACCEPTED_CONTEXT
        assert result.error_comment == "3 not sent: SCP role for SOP class not accepted"
        assert result.final.failed == 3
        assert sorted(result.failed_uids) == sorted(probe_file(p).sop_instance_uid for p in source)

    run(body)


def test_get_of_files_that_cannot_be_read_fails_c003_saying_why(
    tmp_path: Path, source: list[Path]
) -> None:
    async def body() -> None:
        async with world(tmp_path) as (app, _):
            for path in source:
                path.unlink()  # indexed, then gone: no lack of resources
            assoc = await _get_assoc(app)
            storage = StorageSCP(Archive(tmp_path / "out"))
            result = await get(assoc, Model.STUDY_ROOT, _study(), storage, timeout=5)
            await assoc.release()
        assert result.status == NO_ACCEPTED_CONTEXT  # C003 "unable to process", not A702
        assert result.final.failed == 3
        assert result.error_comment is not None
        assert result.error_comment.startswith("3 not sent: cannot read ")
        assert len(result.error_comment) <= 64

    run(body)


def test_get_never_sends_a_file_that_no_longer_holds_the_instance(
    tmp_path: Path, source: list[Path]
) -> None:
    # Walkthrough 5: a file replaced by hand (another patient's instance), or by a symbolic
    # link to a file outside the archive, went out as the instance asked for, with success.
    stranger = make_dataset(patient_id="OTHERPAT", study_uid="9.9.9", sop_instance_uid="9.9.9.1")
    outside = write_instance(tmp_path / "outside" / "secret.dcm", stranger)

    async def body() -> None:
        async with world(tmp_path) as (app, _):
            write_instance(source[0], stranger)  # replaced in place
            source[1].unlink()
            source[1].symlink_to(outside)  # a link leading out of the archive
            assoc = await _get_assoc(app)
            storage = StorageSCP(Archive(tmp_path / "out"))
            result = await get(assoc, Model.STUDY_ROOT, _study(), storage, timeout=5)
            await assoc.release()
        assert result.final.completed == 1 and result.final.failed == 2
        received = sorted(r.sop_instance_uid for r in result.received)
        assert received == [probe_file(source[2]).sop_instance_uid]
        assert not list((tmp_path / "out").rglob("OTHERPAT*"))

    run(body)


def test_get_with_the_index_gone_answers_a_failure_not_an_abort(
    tmp_path: Path, source: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    # The index removed while serving: C-FIND answered C002, C-GET aborted the association
    # (a viewer reports that as a network fault), and stores went on without a word.
    async def body() -> None:
        async with world(tmp_path) as (app, _):
            for leftover in (tmp_path / "serve" / ".netdicom").glob("index.sqlite*"):
                leftover.unlink()
            with caplog.at_level(logging.ERROR, logger="netdicom"):
                app.flush_index()
            assert "was removed: instances are stored but cannot be queried" in caplog.text
            assoc = await _get_assoc(app)
            storage = StorageSCP(Archive(tmp_path / "out"))
            result = await get(assoc, Model.STUDY_ROOT, _study(), storage, timeout=5)
            await assoc.release()
        assert result.status == 0xC002
        assert (result.error_comment or "").startswith("query failed")

    run(body)


def test_get_comment_counts_every_kind_of_failure(tmp_path: Path, source: list[Path]) -> None:
    # One MR the requestor accepted no context for, one CT file gone: "1 not sent: SOP class
    # … not accepted" named one reason for two failures.
    make_files(tmp_path / "serve" / "mr", 1, study_uid=STUDY, sop_class=MR, modality="MR")

    async def body() -> None:
        async with world(tmp_path) as (app, _):
            source[0].unlink()
            assoc = await _get_assoc(app)
            storage = StorageSCP(Archive(tmp_path / "out"))
            result = await get(assoc, Model.STUDY_ROOT, _study(), storage, timeout=5)
            await assoc.release()
        assert result.final.failed == 2 and result.final.completed == 2
        assert result.error_comment is not None
        assert result.error_comment.startswith("2 not sent: SOP class")
        assert result.error_comment.endswith("(+1 more reason)")

    run(body)


def test_get_cancel_after_max(tmp_path: Path, source: list[Path]) -> None:
    async def body() -> None:
        async with world(tmp_path) as (app, _):
            assoc = await _get_assoc(app)
            storage = StorageSCP(Archive(tmp_path / "out"))
            result = await get(
                assoc, Model.STUDY_ROOT, _study(), storage, max_instances=1, timeout=5
            )
            await assoc.release()
        assert result.cancelled
        assert result.status == status.CANCEL
        assert 1 <= len(result.received) < 3
        assert result.final.remaining is not None and result.final.remaining >= 1

    run(body)


async def _move_assoc(app: ServeApp) -> Association:
    return await open_association(
        Peer("127.0.0.1", app.server.port),
        ClientOptions(transport=FAST),
        [ProposedContext(uids.STUDY_ROOT_MOVE, (uids.IMPLICIT_VR_LE,))],
    )


def test_move_receiver_counts_an_instance_placed_but_not_answered(
    tmp_path: Path, source: list[Path]
) -> None:
    # Closed at the end of its grace while an instance is being put in place: the file is
    # kept, so it counts as received though its C-STORE-RSP was never sent.
    placing = threading.Event()
    release = threading.Event()

    def slow_hook(stored: object) -> None:
        placing.set()
        release.wait(5)

    async def body() -> None:
        async with world(tmp_path) as (app, receiver):
            receiver.storage.on_placed.append(slow_hook)
            assoc = await _move_assoc(app)
            moving = asyncio.ensure_future(
                move(assoc, Model.STUDY_ROOT, _study(), "DEST", timeout=10)
            )
            assert await asyncio.to_thread(placing.wait, 10)
            threading.Timer(0.3, release.set).start()
            await receiver.finish(0)
            kept = sorted(p.name for p in (tmp_path / "moved").rglob("*.dcm"))
            assert len(kept) == 1
            assert [f"{r.sop_instance_uid}.dcm" for r in receiver.received] == kept
            assoc.abort()
            with contextlib.suppress(NetDicomError, asyncio.CancelledError):
                await moving

    run(body)


def test_move_to_a_known_destination(tmp_path: Path, source: list[Path]) -> None:
    async def body() -> None:
        async with world(tmp_path) as (app, receiver):
            assoc = await _move_assoc(app)

            def expect(message_id: int) -> None:
                receiver.expected = ("NETDICOM", message_id)

            result = await move(
                assoc, Model.STUDY_ROOT, _study(), "DEST", on_request=expect, timeout=5
            )
            await assoc.release()
            received = list(receiver.received)
            unattributed = receiver.unattributed
        assert result.status == status.SUCCESS and result.final.completed == 3
        assert len(received) == 3 and all(r.ok for r in received)
        # Every sub-operation named our request (Move Originator Message ID, PS3.7 9.3.1.1).
        assert unattributed == 0
        moved = {
            probe_file(p).sop_instance_uid: _dataset_bytes(p)
            for p in (tmp_path / "moved").rglob("*.dcm")
        }
        assert moved == {probe_file(p).sop_instance_uid: _dataset_bytes(p) for p in source}

    run(body)


def test_move_to_unknown_destination_is_a801(tmp_path: Path, source: list[Path]) -> None:
    async def body() -> None:
        async with world(tmp_path) as (app, receiver):
            assoc = await _move_assoc(app)
            result = await move(assoc, Model.STUDY_ROOT, _study(), "NOBODY", timeout=5)
            await assoc.release()
            assert not receiver.received
        assert result.status == status.MOVE_DESTINATION_UNKNOWN
        assert "NOBODY" in (result.error_comment or "")

    run(body)


def test_move_to_unreachable_destination_fails_all(tmp_path: Path, source: list[Path]) -> None:
    async def body() -> None:
        async with world(tmp_path) as (app, _):
            assoc = await _move_assoc(app)
            result = await move(assoc, Model.STUDY_ROOT, _study(), "DEAD", timeout=10)
            await assoc.release()
        assert result.status == status.OUT_OF_RESOURCES_SUBOPERATIONS
        assert result.final.failed == 3
        assert sorted(result.failed_uids) == sorted(probe_file(p).sop_instance_uid for p in source)
        # The requestor is told why (it was a bare A702): an Error Comment, an LO.
        comment = result.error_comment or ""
        assert comment.startswith("cannot reach DEAD: ") and len(comment) <= 64, comment

    run(body)


def test_move_to_destination_that_rejects(tmp_path: Path, source: list[Path]) -> None:
    async def nothing(assoc: Association) -> None:
        return None

    async def body() -> None:
        rejecting = Server(
            "127.0.0.1", 0, decide=lambda rq, s: AssociateRJ(1, 1, 7), handler=nothing, config=FAST
        )
        await rejecting.start()
        app = _app(tmp_path, {"NOPE": Peer("127.0.0.1", rejecting.port, "NOPE")})
        await app.server.start()
        try:
            assoc = await _move_assoc(app)
            result = await move(assoc, Model.STUDY_ROOT, _study(), "NOPE", timeout=10)
            await assoc.release()
        finally:
            await app.server.close()
            await rejecting.close()
        assert result.status == status.OUT_OF_RESOURCES_SUBOPERATIONS
        assert len(result.failed_uids) == 3
        assert (result.error_comment or "").startswith("cannot reach NOPE: "), result

    run(body)


def test_move_to_destination_refusing_every_instance_says_so(
    tmp_path: Path, source: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    # A destination (pynetdicom's storage SCP) answering each C-STORE with A700: the requestor
    # gets the reason in the final response, and serve's log names the destination and status.
    from tests.services.test_store_scu import scp

    async def body(port: int) -> None:
        app = _app(tmp_path, {"FULL": Peer("127.0.0.1", port, "PYSCP")})
        await app.server.start()
        try:
            assoc = await _move_assoc(app)
            result = await move(assoc, Model.STUDY_ROOT, _study(), "FULL", timeout=10)
            await assoc.release()
        finally:
            await app.server.close()
        assert result.status == status.OUT_OF_RESOURCES_SUBOPERATIONS
        assert len(result.failed_uids) == 3
        assert result.error_comment == "refused by the receiver: Refused: out of resources (0xA700)"

    with scp(policy=lambda event, n: 0xA700) as (port, _), caplog.at_level(logging.WARNING):
        run(lambda: body(port))
    assert "C-MOVE: " in caplog.text and "refused by PYSCP@127.0.0.1:" in caplog.text
    assert "(0xA700)" in caplog.text


def test_the_retrieve_log_line_counts_instances_stored_with_a_warning_as_sent(
    tmp_path: Path, source: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    # Walkthrough 7c: "1 sent, 2 failed" for 5 stored (4 with a warning) and 2 failed.
    from tests.services.test_store_scu import scp

    async def body(port: int) -> None:
        app = _app(tmp_path, {"WARNS": Peer("127.0.0.1", port, "PYSCP")})
        await app.server.start()
        try:
            assoc = await _move_assoc(app)
            result = await move(assoc, Model.STUDY_ROOT, _study(), "WARNS", timeout=10)
            await assoc.release()
        finally:
            await app.server.close()
        assert (result.final.completed, result.final.warning) == (1, 2)

    warn_after_first = scp(policy=lambda event, n: 0xB000 if n > 1 else 0)
    with warn_after_first as (port, _), caplog.at_level(logging.INFO, logger="netdicom"):
        run(lambda: body(port))
    assert "3 sent (2 with a warning), 0 failed, status 0xB000" in caplog.text


def test_move_needing_more_than_128_contexts_opens_several_associations(tmp_path: Path) -> None:
    # 130 SOP classes (private ones: serve and the receiver accept unknown classes), each needs
    # a context of its own: two sub-associations (PS3.8 9.3.2.2: 128 contexts at most).
    for n in range(130):
        make_files(tmp_path / "serve" / str(n), 1, study_uid=STUDY, sop_class=f"1.2.826.0.1.99.{n}")

    async def body() -> None:
        async with world(tmp_path) as (app, receiver):
            assoc = await _move_assoc(app)
            result = await move(assoc, Model.STUDY_ROOT, _study(), "DEST", timeout=10)
            await assoc.release()
            await asyncio.sleep(0.2)
            assert receiver.associations == 2
            assert len(receiver.received) == 130
        assert result.status == status.SUCCESS and result.final.completed == 130

    run(body)


def test_requestor_abort_stops_the_sub_operations(tmp_path: Path) -> None:
    make_files(tmp_path / "serve" / "more", 5, study_uid=STUDY)

    async def slow(stored: object) -> None:
        await asyncio.sleep(0.2)

    async def body() -> None:
        async with world(tmp_path) as (app, receiver):
            receiver.storage.on_stored.append(slow)
            assoc = await _move_assoc(app)
            task = asyncio.create_task(move(assoc, Model.STUDY_ROOT, _study(), "DEST", timeout=10))
            while not receiver.received:
                await asyncio.sleep(0.01)
            assoc.abort()
            with pytest.raises(NetDicomError):
                await task
            await asyncio.sleep(1.0)
            assert 1 <= len(receiver.received) <= 3
            assert not app.server.associations  # serve dropped the move and its association

    run(body)


def test_move_cancelled_while_in_progress(tmp_path: Path) -> None:
    """C-CANCEL-RQ between sub-operations of a C-MOVE: the SCP stops and answers FE00 with the
    counts (PS3.4 C.4.2.3.1), and the destination got only what was completed."""
    make_files(tmp_path / "serve", 40, study_uid=STUDY)

    async def body() -> None:
        async with world(tmp_path) as (app, receiver):
            assoc = await _move_assoc(app)
            cancel = asyncio.Event()

            def expect(message_id: int) -> None:
                receiver.expected = ("NETDICOM", message_id)

            def progress(_: Progress) -> None:
                cancel.set()  # on the first pending response

            result = await move(
                assoc,
                Model.STUDY_ROOT,
                _study(),
                "DEST",
                on_request=expect,
                on_progress=progress,
                cancel=cancel,
                timeout=5,
            )
            await assoc.release()
            arrived = len([r for r in receiver.received if r.ok])
        assert result.cancelled
        assert result.status == status.CANCEL
        completed = result.final.completed
        assert completed is not None and 1 <= completed < 40
        assert arrived == completed

    run(body)


def test_destination_aborting_mid_move_fails_the_rest_and_serve_goes_on(tmp_path: Path) -> None:
    """A C-MOVE destination that aborts its sub-association part-way: the sub-operations not
    completed are counted failed (with their UIDs), the requestor gets a final response, and
    the same association can move again."""
    make_files(tmp_path / "serve" / "more", 5, study_uid=STUDY)
    from netdicom.services.store_scp import StoredInstance

    async def body() -> None:
        dest = ServeApp(ServeConfig(directory=tmp_path / "flaky", port=0, transport=FAST))
        placed: list[str] = []

        def abort_after_two(stored: StoredInstance) -> None:
            placed.append(stored.sop_instance_uid)
            if len(placed) == 2:
                for assoc in list(dest.server.associations):
                    assoc.abort()

        dest.storage.on_stored.append(abort_after_two)
        await dest.server.start()
        rx = MoveReceiver(tmp_path / "moved", ae_title="DEST", host="127.0.0.1", transport=FAST)
        await rx.start()
        app = _app(
            tmp_path,
            {
                "FLAKY": Peer("127.0.0.1", dest.server.port, "FLAKY"),
                "DEST": Peer("127.0.0.1", rx.port, "DEST"),
            },
        )
        await app.server.start()
        try:
            assoc = await _move_assoc(app)
            result = await move(assoc, Model.STUDY_ROOT, _study(), "FLAKY", timeout=10)
            final = result.final
            assert final.completed is not None and final.failed is not None, result
            assert final.completed + final.failed + (final.warning or 0) == 5
            # The second instance is on the destination's disk but its answer never came back:
            # serve counts what was answered.
            assert 1 <= final.completed <= 2 and final.failed >= 3
            assert result.status in (
                status.SUBOPERATIONS_WARNING,
                status.OUT_OF_RESOURCES_SUBOPERATIONS,
            )
            assert len(result.failed_uids) == final.failed
            # The association that asked is still good: the same move to a sound destination.
            again = await move(assoc, Model.STUDY_ROOT, _study(), "DEST", timeout=10)
            await assoc.release()
            assert again.status == status.SUCCESS and again.final.completed == 5
        finally:
            await app.server.close()
            await rx.finish(0)
            await dest.server.close()

    run(body)


# --- compressed instances (walk-through finding 4) -----------------------------------------

JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"


def write_compressed(path: Path, transfer_syntax: str, **kwargs: object) -> Path:
    """An instance with encapsulated pixel data (a fake JPEG stream: serve and get send and
    store compressed data as it is, so no codec ever reads it)."""
    from pydicom.encaps import encapsulate

    ds = make_dataset(**kwargs)  # type: ignore[arg-type]
    ds.PixelData = encapsulate([b"\xff\xd8not really a JPEG\xff\xd9"])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return write_instance(path, ds, transfer_syntax)


@pytest.fixture
def mixed(tmp_path: Path) -> list[Path]:
    """One study: an uncompressed CT, a JPEG Baseline CT and a JPEG Lossless SV1 CT."""
    serve = tmp_path / "serve"
    return [
        *make_files(serve, 1, study_uid=STUDY),
        write_compressed(serve / "baseline.dcm", JPEG_BASELINE, study_uid=STUDY),
        write_compressed(serve / "lossless.dcm", JPEG_LOSSLESS_SV1, study_uid=STUDY),
    ]


def test_get_contexts_give_each_compressed_syntax_a_context_of_its_own() -> None:
    # An acceptor takes one syntax per context: one context offering them all let through
    # the one it picked, and an instance in any other could not be sent.
    proposal = get_contexts(Model.STUDY_ROOT, [CT])
    storage = [c for c in proposal.contexts if c.abstract_syntax == CT]
    assert storage[0].transfer_syntaxes == (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE)
    assert [c.transfer_syntaxes for c in storage[1:]] == [(ts,) for ts in COMPRESSED_SYNTAXES]
    assert not proposal.left_out and not proposal.dropped


def test_get_contexts_fill_128_with_the_common_syntaxes_first() -> None:
    proposal = get_contexts(Model.STUDY_ROOT, CURATED_SOP_CLASSES)
    assert len(proposal.contexts) == 128
    pairs = {(c.abstract_syntax, c.transfer_syntaxes) for c in proposal.contexts}
    # Every curated SOP class keeps its uncompressed context; every image class JPEG Baseline.
    assert all(
        (s, (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE)) in pairs for s in CURATED_SOP_CLASSES
    )
    assert (MR, (JPEG_BASELINE,)) in pairs and (CT, (JPEG_LOSSLESS_SV1,)) in pairs
    # No JPEG context is spent on a SOP class without pixel data (basic text SR).
    assert ("1.2.840.10008.5.1.4.1.1.88.11", (JPEG_BASELINE,)) not in pairs
    assert proposal.left_out and all(ts not in (JPEG_BASELINE,) for _, ts in proposal.left_out)


def test_get_contexts_keep_standard_classes_before_private_ones() -> None:
    # 131 private classes of one instance each sorted before CT (1.2.826 < 1.2.840): CT,
    # most of the study, was left out (walkthrough 5).
    private = [f"1.2.826.0.1.3680043.9.{n}" for n in range(131)]
    proposal = get_contexts(Model.STUDY_ROOT, [*private, CT])
    assert CT in {c.abstract_syntax for c in proposal.contexts}
    assert len(proposal.dropped) == 5 and set(proposal.dropped) <= set(private)  # 132 - 127


def test_get_contexts_take_the_syntaxes_asked_for() -> None:
    proposal = get_contexts(Model.STUDY_ROOT, [CT, MR], [JPEG_LOSSLESS_SV1, uids.EXPLICIT_VR_LE])
    assert [c.transfer_syntaxes for c in proposal.contexts[3:]] == [(JPEG_LOSSLESS_SV1,)] * 2


def test_get_receives_instances_in_several_compressed_syntaxes(
    tmp_path: Path, mixed: list[Path]
) -> None:
    async def body() -> None:
        async with world(tmp_path) as (app, _):
            assoc = await _get_assoc(app)
            out = tmp_path / "out"
            storage = StorageSCP(Archive(out), Layout.parse(DEFAULT_LAYOUT))
            result = await get(assoc, Model.STUDY_ROOT, _study(), storage, timeout=5)
            await assoc.release()
        assert result.status == status.SUCCESS, result
        assert (result.final.completed, result.final.failed) == (3, 0)
        retrieved = {probe_file(p).sop_instance_uid: _dataset_bytes(p) for p in out.rglob("*.dcm")}
        assert retrieved == {probe_file(p).sop_instance_uid: _dataset_bytes(p) for p in mixed}
        syntaxes = {probe_file(p).transfer_syntax for p in out.rglob("*.dcm")}
        assert {JPEG_BASELINE, JPEG_LOSSLESS_SV1} <= syntaxes

    run(body)


async def _uncompressed_get_assoc(app: ServeApp) -> Association:
    """A C-GET association as dcmtk's getscu proposes by default: uncompressed only."""
    return await open_association(
        Peer("127.0.0.1", app.server.port),
        ClientOptions(transport=FAST),
        [
            ProposedContext(uids.STUDY_ROOT_GET, (uids.EXPLICIT_VR_LE,)),
            ProposedContext(CT, (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE)),
        ],
        roles={CT: (False, True)},
    )


def test_get_of_syntaxes_not_accepted_fails_them_with_c003_and_says_why(
    tmp_path: Path, mixed: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    baseline = probe_file(mixed[1]).sop_instance_uid

    async def body() -> None:
        async with world(tmp_path) as (app, _):
            assoc = await _uncompressed_get_assoc(app)
            ds = _study()
            ds.QueryRetrieveLevel = "IMAGE"
            ds.SeriesInstanceUID = probe_series(mixed[1])
            ds.SOPInstanceUID = baseline
            storage = StorageSCP(Archive(tmp_path / "out"))
            with caplog.at_level(logging.INFO, logger="netdicom"):
                result = await get(assoc, Model.STUDY_ROOT, ds, storage, timeout=5)
            await assoc.release()
        # PS3.4 C.4.3.3.1: no context for the instance: a failed sub-operation, and all
        # failed: Failure, not "Refused: out of resources" (A702).
        assert result.status == NO_ACCEPTED_CONTEXT
        assert result.error_comment == f"1 not sent: transfer syntax {JPEG_BASELINE} not accepted"
        assert result.failed_uids == [baseline]
        line = next(r.getMessage() for r in caplog.records if "not sent" in r.getMessage())
        assert baseline in line and "JPEG Baseline" in line and JPEG_BASELINE in line
        assert "accepted for that SOP class: Explicit VR Little Endian" in line
        assert any(r.getMessage().endswith(": 1 instance") for r in caplog.records)

    run(body)


def test_get_of_a_mixed_study_warns_b000_with_the_reason(tmp_path: Path, mixed: list[Path]) -> None:
    async def body() -> None:
        async with world(tmp_path) as (app, _):
            assoc = await _uncompressed_get_assoc(app)
            storage = StorageSCP(Archive(tmp_path / "out"))
            result = await get(assoc, Model.STUDY_ROOT, _study(), storage, timeout=5)
            await assoc.release()
        assert result.status == status.SUBOPERATIONS_WARNING
        assert (result.final.completed, result.final.failed) == (1, 2)
        # Two syntaxes not accepted: the UID of the first and "(+1 more reason)" do not both fit in
        # the 64 characters of an LO; the count of kinds stays (it once put both on the first).
        assert result.error_comment == "2 not sent: transfer syntax not accepted (+1 more reason)"

    run(body)


def probe_series(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True).SeriesInstanceUID)


def test_move_receiver_lists_an_instance_cut_off_mid_data_set(tmp_path: Path) -> None:
    # Walk-through 4: a sub-association aborted during a data set left that instance in no
    # report, though its C-STORE-RQ had named it.
    from netdicom.core.dimse import CStoreRQ, encode_command
    from netdicom.core.pdu import AbortPDU, AssociateAC
    from netdicom.services.find_scp import encode_identifier
    from tests.dicomfiles import CT, make_dataset
    from tests.hardening.raw import RawPeer, echo_rq, pdata

    def send_half(port: int) -> None:
        with RawPeer(port) as peer:
            contexts = [ProposedContext(CT, (uids.EXPLICIT_VR_LE,))]
            assert isinstance(peer.associate(echo_rq("DEST", contexts=contexts)), AssociateAC)
            ds = make_dataset(sop_instance_uid="1.2.826.0.1.88.1")
            data = encode_identifier(ds, uids.EXPLICIT_VR_LE)
            peer.send(pdata(1, encode_command(CStoreRQ(1, CT, "1.2.826.0.1.88.1"))))
            peer.send(pdata(1, data[: len(data) // 2], command=False, last=False))
            peer.send_pdu(AbortPDU(source=0, reason=0))
            peer.wait_closed(5)

    async def body() -> None:
        rx = MoveReceiver(tmp_path / "moved", ae_title="DEST", host="127.0.0.1", transport=FAST)
        await rx.start()
        try:
            await asyncio.to_thread(send_half, rx.port)
            for _ in range(100):
                if rx.received:
                    break
                await asyncio.sleep(0.05)
        finally:
            await rx.finish(0)
        (lost,) = rx.received
        assert lost.sop_instance_uid == "1.2.826.0.1.88.1" and lost.status is None
        assert (lost.error_comment or "").startswith("not stored: cut off during its data set")
        assert not list((tmp_path / "moved").rglob("*.dcm"))

    run(body)


def test_the_receivers_refusal_is_not_hidden_by_one_instance_it_could_not_take() -> None:
    # Walkthrough 6b: 28 instances refused by the destination (A700, its disk full) and one of
    # a class it accepted no context for: "C003, 1 not sent: SOP class not accepted".
    from netdicom.services.retrieve_scp import _Tally

    tally = _Tally(total=29)
    for number in range(28):
        tally.fail(f"1.{number}")
        tally.note("refused by the receiver: Refused: out of resources (0xA700)")
    tally.fail("1.99")
    tally.not_accepted.append(("SOP class", "1.2.3.4"))
    assert not tally.all_ours()
    assert (tally.comment() or "").startswith("refused by the receiver")
    only_ours = _Tally(total=1)
    only_ours.fail("1.99")
    only_ours.not_accepted.append(("SOP class", "1.2.3.4"))
    assert only_ours.all_ours() and "not sent" in (only_ours.comment() or "")
