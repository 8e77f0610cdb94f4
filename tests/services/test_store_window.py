"""The asynchronous operations window (PS3.7 D.3.3.3) between `store` and `serve`.

serve grants a window to associations that carry only storage (and verification) contexts,
and then makes the received instances durable in the background while the next ones arrive;
`store` keeps up to that many C-STOREs outstanding and matches the responses on their Message
ID, in whatever order they come back. Everything runs in one event loop over 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from netdicom.archive.matching import FIND_SOP_CLASSES
from netdicom.core import uids
from netdicom.core.acse import ProposedContext, build_associate_rq
from netdicom.core.errors import TimeoutExpired
from netdicom.core.pdu import AssociateAC, AsyncOpsWindow
from netdicom.services.peer import Peer
from netdicom.services.planning import scan
from netdicom.services.serve import ASYNC_STORE_WINDOW, ServeApp
from netdicom.services.session import ClientOptions, negotiated_window, open_association
from netdicom.services.store_scp import StoredInstance
from netdicom.services.store_scu import FileOutcome, Result, StoreReport, store
from netdicom.transport.association import Association
from netdicom.transport.config import Timeouts, TransportConfig
from tests.dicomfiles import CT, make_files
from tests.services.test_store_scp import archive_files, serving


class _Finished:
    def __init__(self) -> None:
        self.order: list[FileOutcome] = []

    def opened(self, assoc: Association) -> None:
        pass

    def sent_bytes(self, count: int) -> None:
        pass

    def finished(self, outcome: FileOutcome) -> None:
        self.order.append(outcome)


class _Overlap:
    """An on_stored hook that takes `delay` seconds (per instance number) and records how many
    instances were being completed at once."""

    def __init__(self, delays: dict[int, float] | None = None, default: float = 0.03) -> None:
        self.delays = delays or {}
        self.default = default
        self.running = 0
        self.most = 0
        self.seen = 0
        self.received: list[str] = []  # SOP instance UIDs in the order they arrived

    async def __call__(self, stored: StoredInstance) -> None:
        self.received.append(stored.sop_instance_uid)
        self.seen += 1
        number = self.seen
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.delays.get(number, self.default))
        finally:
            self.running -= 1


async def _store(
    app: ServeApp, paths: list[Path], window: int, dimse: float = 10.0
) -> tuple[StoreReport, _Finished]:
    finished = _Finished()
    options = ClientOptions(
        transport=TransportConfig(timeouts=Timeouts(connect=5, acse=5, dimse=dimse))
    )
    report = await store(
        Peer("127.0.0.1", app.server.port, "NETDICOM"),
        options,
        scan(paths, recursive=True),
        timeout=dimse,
        observer=finished,
        window=window,
    )
    return report, finished


def _rq(contexts: list[ProposedContext], window: int) -> Any:
    return build_associate_rq(
        calling_ae="SCU",
        called_ae="NETDICOM",
        contexts=contexts,
        max_pdu=16384,
        async_window=AsyncOpsWindow(max_invoked=window, max_performed=1),
    )


def test_serve_grants_a_window_to_storage_only_associations(tmp_path: Path) -> None:
    async def main() -> None:
        async with serving(tmp_path) as app:
            storage = [
                ProposedContext(CT, (uids.EXPLICIT_VR_LE,)),
                ProposedContext(uids.VERIFICATION, (uids.IMPLICIT_VR_LE,)),
            ]
            answer = app.decide(_rq(storage, 1000), app.server)
            assert isinstance(answer, tuple) and isinstance(answer[0], AssociateAC)
            # The requestor may invoke up to our cap (we perform them); it performs what we
            # invoke: one at a time. Both fields are stated for the requestor (D.3.3.3).
            assert answer[0].user_information.async_ops_window == AsyncOpsWindow(
                max_invoked=ASYNC_STORE_WINDOW, max_performed=1
            )
            answer = app.decide(_rq(storage, 64), app.server)
            assert isinstance(answer, tuple) and isinstance(answer[0], AssociateAC)
            assert answer[0].user_information.async_ops_window == AsyncOpsWindow(64, 1)
            query = [*storage, ProposedContext(sorted(FIND_SOP_CLASSES)[0], (uids.EXPLICIT_VR_LE,))]
            answer = app.decide(_rq(query, 64), app.server)
            assert isinstance(answer, tuple)
            # Q/R services read their association while answering: synchronous.
            assert answer[0].user_information.async_ops_window == AsyncOpsWindow(1, 1)
            # Not proposed: not answered (PS3.7 D.3.3.3).
            plain = build_associate_rq(
                calling_ae="SCU", called_ae="NETDICOM", contexts=storage, max_pdu=16384
            )
            answer = app.decide(plain, app.server)
            assert isinstance(answer, tuple)
            assert answer[0].user_information.async_ops_window is None

            assoc = await open_association(
                Peer("127.0.0.1", app.server.port, "NETDICOM"), ClientOptions(), storage, window=8
            )
            assert negotiated_window(assoc) == 8  # ours, below serve's cap
            await assoc.release()
            assoc = await open_association(
                Peer("127.0.0.1", app.server.port, "NETDICOM"), ClientOptions(), storage
            )
            assert negotiated_window(assoc) == 1
            await assoc.release()

    asyncio.run(asyncio.wait_for(main(), 30))


def test_stores_overlap_under_a_window_and_not_without(tmp_path: Path) -> None:
    paths = make_files(tmp_path / "in", 12)

    async def main() -> None:
        for window, root in ((8, tmp_path / "a"), (1, tmp_path / "b")):
            async with serving(root) as app:
                hook = _Overlap()
                app.storage.on_stored.append(hook)
                report, _ = await _store(app, paths, window)
                assert report.count(Result.STORED) == 12 and report.error is None
                if window == 1:
                    assert hook.most == 1
                else:
                    assert hook.most > 1  # instances completed while others arrived
            assert len(archive_files(root)) == 12

    asyncio.run(asyncio.wait_for(main(), 60))


def test_responses_in_another_order_are_matched_to_their_files(tmp_path: Path) -> None:
    paths = make_files(tmp_path / "in", 6)

    async def main() -> None:
        async with serving(tmp_path / "out") as app:
            hook = _Overlap({1: 0.5}, default=0.0)
            app.storage.on_stored.append(hook)
            report, finished = await _store(app, paths, 8)
        assert report.count(Result.STORED) == 6
        from netdicom.core.datasets import probe_file

        answered = [probe_file(outcome.path).sop_instance_uid for outcome in finished.order]
        assert sorted(answered) == sorted(hook.received)
        # The slow first one was answered last, and still reported for its own file.
        assert answered[-1] == hook.received[0] and answered != hook.received
        for outcome in report.outcomes:
            assert outcome.sop_instance_uid == probe_file(outcome.path).sop_instance_uid

    asyncio.run(asyncio.wait_for(main(), 30))


def test_a_timeout_with_operations_outstanding_reports_each_file_once(tmp_path: Path) -> None:
    paths = make_files(tmp_path / "in", 10)

    async def main() -> None:
        async with serving(tmp_path / "out") as app:
            # From the fourth instance on, serve takes far longer than the DIMSE timeout.
            app.storage.on_stored.append(_Overlap({n: 30.0 for n in range(4, 11)}, 0.0))
            report, _ = await _store(app, paths, 4, dimse=0.5)
        assert sorted(o.path for o in report.outcomes) == sorted(paths)
        assert report.count(Result.STORED) == 3
        failed = [o for o in report.outcomes if o.result is Result.FAILED]
        assert len(failed) == 7
        # Sent and unanswered: they may have been stored (serve does store them, late);
        # never sent: "not sent". Both say why.
        unanswered = [o for o in failed if (o.reason or "").startswith("sent, not answered")]
        assert 1 <= len(unanswered) <= 4
        assert all("may have been stored" in (o.reason or "") for o in unanswered)
        prefixes = ("sent, not answered", "not stored", "not sent")
        assert all((o.reason or "").startswith(prefixes) for o in failed)
        assert isinstance(report.error, TimeoutExpired)

    asyncio.run(asyncio.wait_for(main(), 60))


def test_an_instance_answered_as_stored_is_found_at_once(tmp_path: Path) -> None:
    # serve queues the index rows of a store and adds them in the background; a C-FIND on
    # another association right after the C-STORE-RSP must still find every instance.
    from netdicom.archive.matching import Level, Model
    from netdicom.services.find_scu import build_identifier, find, find_contexts

    paths = make_files(tmp_path / "in", 5)

    async def main() -> None:
        async with serving(tmp_path / "out") as app:
            report, _ = await _store(app, paths, 8)
            assert report.count(Result.STORED) == 5
            assert app.index.pending > 0  # queued, not yet added (the flush is a second away)
            assoc = await open_association(
                Peer("127.0.0.1", app.server.port, "NETDICOM"),
                ClientOptions(),
                find_contexts(Model.STUDY_ROOT),
            )
            found: list[str] = []
            identifier = build_identifier(Level.IMAGE, {0x0020000D: "", 0x00080018: ""})
            result = await find(
                assoc, Model.STUDY_ROOT, identifier, lambda ds, _: found.append(ds.SOPInstanceUID)
            )
            await assoc.release()
            assert result.status == 0 and len(found) == 5

    asyncio.run(asyncio.wait_for(main(), 30))
