"""A requestor that sends its A-RELEASE-RQ right behind a C-FIND, C-GET or C-MOVE (without
waiting for the answers) gets every answer before the A-RELEASE-RP (PS3.8 7.2: an orderly
release loses nothing in transit). serve answered the release at once and dropped the
request's answers without a word (walkthrough 6c, with recorded pynetdicom, dcmtk and
netdicom streams replayed back to back)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from pydicom.dataset import Dataset

from netdicom.archive.matching import STUDY_ROOT_FIND
from netdicom.core import uids
from netdicom.core.acse import ProposedContext, build_associate_rq
from netdicom.core.dimse import (
    CFindRQ,
    CFindRSP,
    CGetRQ,
    CGetRSP,
    CMoveRQ,
    CMoveRSP,
    CStoreRQ,
    decode_command,
    encode_command,
    status,
)
from netdicom.core.pdu import AssociateAC, PDataTF, ReleaseRP, ReleaseRQ, encode_pdu
from netdicom.services.find_scp import encode_identifier
from netdicom.services.move_scu import MoveReceiver
from netdicom.services.peer import Peer
from netdicom.services.serve import ServeApp, ServeConfig
from tests.dicomfiles import CT, make_files
from tests.hardening.raw import RawPeer, pdata

STUDY = "1.2.826.0.1.9.2"
EXPLICIT = uids.EXPLICIT_VR_LE


@contextlib.asynccontextmanager
async def serving(tmp_path: Path) -> AsyncIterator[tuple[ServeApp, MoveReceiver]]:
    make_files(tmp_path / "serve", 4, study_uid=STUDY)
    rx = MoveReceiver(tmp_path / "moved", ae_title="DEST", host="127.0.0.1")
    await rx.start()
    app = ServeApp(
        ServeConfig(
            directory=tmp_path / "serve",
            port=0,
            remotes={"DEST": Peer("127.0.0.1", rx.port, "DEST")},
        )
    )
    await app.server.start()
    try:
        yield app, rx
    finally:
        await app.server.close(grace=1.0)
        await rx.finish(0)


def _exchange(port: int, abstract: str, request: object, *, get: bool = False) -> list[object]:
    """Associate, send `request` + its identifier + A-RELEASE-RQ in one write, and return
    the commands received until the A-RELEASE-RP (which ends the list)."""
    contexts = [ProposedContext(abstract, (EXPLICIT,))]
    roles = None
    if get:
        contexts.append(ProposedContext(CT, (EXPLICIT,)))
        roles = {CT: (False, True)}
    rq = build_associate_rq(
        calling_ae="RAWPEER", called_ae="ANY", contexts=contexts, max_pdu=0, roles=roles
    )
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = STUDY if get or isinstance(request, CMoveRQ) else ""
    received: list[object] = []
    with RawPeer(port) as peer:
        assert isinstance(peer.associate(rq), AssociateAC)
        peer.send(
            pdata(1, encode_command(request))  # type: ignore[arg-type]
            + pdata(1, encode_identifier(identifier, EXPLICIT), command=False)
            + encode_pdu(ReleaseRQ())
        )
        while True:
            pdu = peer.read_pdu(20)
            if isinstance(pdu, ReleaseRP):
                received.append(pdu)
                return received
            assert isinstance(pdu, PDataTF), pdu
            received.extend(decode_command(bytes(pdv.data)) for pdv in pdu.pdvs if pdv.is_command)


def _run(tmp_path: Path, abstract: str, request: object, get: bool = False) -> list[object]:
    async def go() -> list[object]:
        async with serving(tmp_path) as (app, _):
            return await asyncio.to_thread(_exchange, app.server.port, abstract, request, get=get)

    return asyncio.run(asyncio.wait_for(go(), 60))


def test_a_c_find_is_answered_before_the_release(tmp_path: Path) -> None:
    got = _run(tmp_path, STUDY_ROOT_FIND, CFindRQ(1, STUDY_ROOT_FIND))
    assert [type(m) for m in got] == [CFindRSP, CFindRSP, ReleaseRP]
    assert [m.status for m in got[:2]] == [status.PENDING, status.SUCCESS]  # type: ignore[attr-defined]


def test_a_c_move_is_carried_out_before_the_release(tmp_path: Path) -> None:
    move = uids.STUDY_ROOT_MOVE

    async def go() -> tuple[list[object], int]:
        async with serving(tmp_path) as (app, rx):
            got = await asyncio.to_thread(
                _exchange, app.server.port, move, CMoveRQ(1, move, "DEST")
            )
            return got, len(rx.received)

    got, moved = asyncio.run(asyncio.wait_for(go(), 60))
    final = got[-2]
    assert isinstance(final, CMoveRSP) and isinstance(got[-1], ReleaseRP)
    assert final.status == status.SUCCESS and final.number_of_completed_suboperations == 4
    assert moved == 4


def test_a_c_get_released_instead_of_answered_ends_as_cancelled(tmp_path: Path) -> None:
    # The requestor can send no C-STORE-RSP after its A-RELEASE-RQ (Sta7, PS3.8 Table 9-10):
    # the release cancels the sub-operations; the final response still comes first.
    get = uids.STUDY_ROOT_GET
    got = _run(tmp_path, get, CGetRQ(1, get), get=True)
    assert isinstance(got[0], CStoreRQ)
    final = got[-2]
    assert isinstance(final, CGetRSP) and isinstance(got[-1], ReleaseRP)
    assert final.status == status.CANCEL
    assert sum(isinstance(m, CStoreRQ) for m in got) == 1
