"""C-GET SCU against a hostile C-GET SCP (written here with our own transport): traversal and
absolute-path UIDs get a failure status and nothing is written outside the output folder; a
peer that grants no SCP role but sends anyway is served, with a warning."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

from pydicom.dataset import Dataset

from netdicom.archive.layout import DEFAULT_LAYOUT, Layout
from netdicom.archive.matching import Level, Model
from netdicom.archive.writer import Archive
from netdicom.core.acse import AcceptorPolicy, negotiate_acceptor
from netdicom.core.dimse import (
    CGetRQ,
    CGetRSP,
    CommandReceived,
    CStoreRQ,
    CStoreRSP,
    DatasetFragment,
    status,
)
from netdicom.core.pdu import AssociateRJ, AssociateRQ
from netdicom.services.find_scp import encode_identifier
from netdicom.services.get_scu import get, get_contexts
from netdicom.services.peer import Peer
from netdicom.services.retrieve_common import RetrieveRequest, build_identifier
from netdicom.services.session import ClientOptions, open_association
from netdicom.services.store_scp import UNSAFE_UID, StorageSCP
from netdicom.transport.association import Association
from netdicom.transport.config import Timeouts, TransportConfig
from netdicom.transport.server import Server
from tests.dicomfiles import CT, make_dataset

FAST = TransportConfig(timeouts=Timeouts(connect=5, acse=5, dimse=5))


def hostile_uids(base: Path) -> list[tuple[str, str]]:
    """(SOP Instance UID, Patient ID) pairs a hostile C-GET SCP sends."""
    return [
        ("../../../evil", "P1"),
        (str(base / "absolute"), "P1"),
        ("1.2.3/../../../escape", "P1"),
        ("1.2.826.0.1.77", "../../../outside"),  # a valid UID, a hostile path element
    ]


async def _hostile_handler(assoc: Association, sends: Sequence[tuple[str, str]]) -> None:
    negotiated = assoc.negotiated
    assert negotiated is not None
    storage = next(c for c in negotiated.accepted.values() if c.abstract_syntax == CT)
    while True:
        try:
            event = await assoc.receive(5)
        except Exception:
            return
        if not isinstance(event, CommandReceived) or not isinstance(event.message, CGetRQ):
            if not isinstance(event, CommandReceived | DatasetFragment):
                assoc.answer_release()
                return
            continue
        request = event.message
        if request.has_dataset:
            while not (await assoc.receive(5)).is_last:  # type: ignore[union-attr]
                pass
        for number, (uid, patient) in enumerate(sends, 1):
            ds = make_dataset(sop_instance_uid="1.2.3", patient_id=patient)
            ds.SOPInstanceUID = uid
            data = encode_identifier(ds, storage.transfer_syntax)
            await assoc.send_message(storage.context_id, CStoreRQ(100 + number, CT, uid), data)
            reply = await assoc.receive(5)
            assert isinstance(reply, CommandReceived) and isinstance(reply.message, CStoreRSP)
        await assoc.send_message(
            event.context_id,
            CGetRSP(
                request.message_id,
                status.SUBOPERATIONS_WARNING,
                request.affected_sop_class_uid,
                number_of_completed_suboperations=len(sends),
                number_of_failed_suboperations=0,
                number_of_warning_suboperations=0,
            ),
        )


@contextlib.asynccontextmanager
async def hostile_scp(
    sends: Sequence[tuple[str, str]], *, grant_role: bool = True
) -> AsyncIterator[Server]:
    policy = AcceptorPolicy(
        ae_title="EVIL",
        transfer_syntax_chooser=lambda abstract, offered: offered[0],
        can_act_as_scu=(lambda sop_class: True) if grant_role else frozenset(),
    )

    def decide(rq: AssociateRQ, server: Server) -> object:
        if not grant_role:
            # Answer as if no role item had been proposed: default roles, no item returned.
            info = dataclasses.replace(rq.user_information, role_selections=())
            rq = dataclasses.replace(rq, user_information=info)
        answer = negotiate_acceptor(rq, policy)
        assert not isinstance(answer, AssociateRJ)
        return answer

    server = Server(
        "127.0.0.1",
        0,
        decide=decide,  # type: ignore[arg-type]
        handler=lambda assoc: _hostile_handler(assoc, sends),
        config=FAST,
    )
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@contextlib.contextmanager
def hostile_scp_thread(
    sends: Sequence[tuple[str, str]], *, grant_role: bool = True
) -> Iterator[int]:
    """The hostile SCP on a thread of its own (for CLI tests run as subprocesses)."""
    started = threading.Event()
    port: list[int] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def main() -> None:
        async with hostile_scp(sends, grant_role=grant_role) as server:
            port.append(server.port)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield port[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def _identifier() -> Dataset:
    return build_identifier(
        RetrieveRequest(Level.STUDY, (), 0x0020000D, ("1.2.3",)), Model.STUDY_ROOT
    )


def _everything(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_traversal_uids_write_nothing_outside_out(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out"
    sends = hostile_uids(tmp_path)

    async def body() -> None:
        async with hostile_scp(sends) as server:
            proposal = get_contexts(Model.STUDY_ROOT, [CT])
            assoc = await open_association(
                Peer("127.0.0.1", server.port),
                ClientOptions(transport=FAST),
                proposal.contexts,
                roles=proposal.roles,
            )
            storage = StorageSCP(Archive(out), Layout.parse(DEFAULT_LAYOUT))
            result = await get(assoc, Model.STUDY_ROOT, _identifier(), storage, timeout=5)
            await assoc.release()
        codes = [r.status for r in result.received]
        assert codes == [UNSAFE_UID, UNSAFE_UID, UNSAFE_UID, status.SUCCESS]
        assert not result.role_warnings

    asyncio.run(asyncio.wait_for(body(), 30))
    outside = {p for p in _everything(tmp_path) if out not in p.parents}
    assert outside == set()
    stored = [p for p in _everything(out) if p.suffix == ".dcm"]
    assert len(stored) == 1
    assert ".." not in stored[0].relative_to(out).parts


def test_peer_without_role_answer_is_served_with_a_warning(tmp_path: Path) -> None:
    out = tmp_path / "out"

    async def body() -> None:
        async with hostile_scp([("1.2.826.0.1.5", "P1")], grant_role=False) as server:
            proposal = get_contexts(Model.STUDY_ROOT, [CT])
            assoc = await open_association(
                Peer("127.0.0.1", server.port),
                ClientOptions(transport=FAST),
                proposal.contexts,
                roles=proposal.roles,
            )
            negotiated = assoc.negotiated
            assert negotiated is not None
            assert not any(c.we_are_scp for c in negotiated.accepted.values())
            storage = StorageSCP(Archive(out))
            result = await get(assoc, Model.STUDY_ROOT, _identifier(), storage, timeout=5)
            await assoc.release()
        assert [r.status for r in result.received] == [status.SUCCESS]
        assert result.role_warnings == {CT}

    asyncio.run(asyncio.wait_for(body(), 30))
    assert len(list(out.rglob("*.dcm"))) == 1
