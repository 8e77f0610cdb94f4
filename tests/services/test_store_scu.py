"""netdicom.services.store_scu against a real Storage SCP (pynetdicom, in a thread)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from netdicom.core import uids
from netdicom.core.errors import (
    AssociationAborted,
    ConnectFailed,
    ConnectionClosed,
    TimeoutExpired,
)
from netdicom.services.peer import Peer
from netdicom.services.planning import Scan, scan
from netdicom.services.session import ClientOptions
from netdicom.services.store_scu import FileOutcome, Result, StoreReport, store
from netdicom.transport.association import Association
from netdicom.transport.config import Timeouts, TransportConfig
from tests.dicomfiles import CT, MR, make_dataset, make_files, write_instance
from tests.peers import free_port

pynetdicom = pytest.importorskip("pynetdicom")


@dataclass
class Received:
    """What the SCP got: per SOP instance, the transfer syntax and the data set bytes."""

    items: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    associations: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


Policy = Callable[[Any, int], int | None]  # (event, n-th store) -> status, None: abort


@contextlib.contextmanager
def scp(
    transfer_syntaxes: list[str] | None = None,
    policy: Policy | None = None,
    sop_classes: tuple[str, ...] = (CT, MR),
) -> Iterator[tuple[int, Received]]:
    ae = pynetdicom.AE(ae_title="PYSCP")
    ae.maximum_pdu_size = 0
    syntaxes = transfer_syntaxes or [uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE]
    for sop in sop_classes:
        ae.add_supported_context(sop, syntaxes)
    received = Received()
    counter = iter(range(1, 1_000_000))

    def on_store(event: Any) -> int:
        n = next(counter)
        status = policy(event, n) if policy else 0
        if status is None:
            event.assoc.abort()
            return 0xC000
        with received.lock:
            received.associations.add(id(event.assoc))
            received.items[event.request.AffectedSOPInstanceUID] = (
                str(event.context.transfer_syntax),
                event.request.DataSet.getvalue(),
            )
        return status

    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(pynetdicom.evt.EVT_C_STORE, on_store)]
    )
    try:
        yield port, received
    finally:
        server.shutdown()


class Recorder:
    def __init__(self) -> None:
        self.opened: list[Association] = []
        self.bytes = 0
        self.finished: list[FileOutcome] = []

    def opened_(self, assoc: Association) -> None:
        self.opened.append(assoc)

    def sent_bytes(self, count: int) -> None:
        self.bytes += count

    def finished_(self, outcome: FileOutcome) -> None:
        self.finished.append(outcome)


class _Observer:
    def __init__(self, recorder: Recorder) -> None:
        self.r = recorder

    def opened(self, assoc: Association) -> None:
        self.r.opened_(assoc)

    def sent_bytes(self, count: int) -> None:
        self.r.sent_bytes(count)

    def finished(self, outcome: FileOutcome) -> None:
        self.r.finished_(outcome)


def _run(
    port: int,
    paths: list[Path],
    *,
    associations: int = 1,
    timeout: float = 10.0,
    found: Scan | None = None,
) -> tuple[StoreReport, Recorder]:
    """Store `paths` (planned here, or as `found` says: planned earlier)."""
    recorder = Recorder()
    options = ClientOptions(
        transport=TransportConfig(timeouts=Timeouts(connect=5, acse=5, dimse=timeout))
    )
    if found is None:
        found = scan(paths, recursive=True)
    report = asyncio.run(
        store(
            Peer("127.0.0.1", port),
            options,
            found,
            associations=associations,
            timeout=timeout,
            observer=_Observer(recorder),
        )
    )
    return report, recorder


def _dataset_bytes(path: Path) -> bytes:
    from netdicom.core.datasets import probe_file

    info = probe_file(path)
    return path.read_bytes()[info.dataset_offset :]


def test_stores_every_file_as_it_is(tmp_path: Path) -> None:
    paths = make_files(tmp_path / "ct", 6, rows=64, columns=64)
    paths += make_files(tmp_path / "mr", 2, sop_class=MR, modality="MR")
    with scp() as (port, received):
        report, recorder = _run(port, [tmp_path])
    assert report.all_stored and report.error is None
    assert report.count(Result.STORED) == 8
    assert report.associations == 1
    for path in paths:
        outcome = next(o for o in report.outcomes if o.path == path)
        ts, data = received.items[outcome.sop_instance_uid or ""]
        assert ts == uids.EXPLICIT_VR_LE and not outcome.converted
        assert data == _dataset_bytes(path)  # byte for byte
        assert outcome.status == 0 and outcome.status_name == "Success"
    assert len(recorder.finished) == 8
    assert recorder.bytes == report.bytes_sent == sum(len(_dataset_bytes(p)) for p in paths)


def test_converts_when_only_implicit_is_accepted(tmp_path: Path) -> None:
    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset

    paths = make_files(tmp_path, 3, transfer_syntax=str(ExplicitVRLittleEndian))
    with scp([uids.IMPLICIT_VR_LE]) as (port, received):
        report, _ = _run(port, paths)
    assert report.count(Result.STORED) == 3
    for path in paths:
        original = dcmread(path)
        ts, data = received.items[original.SOPInstanceUID]
        assert ts == uids.IMPLICIT_VR_LE
        result = read_dataset(DicomBytesIO(data), True, True)
        assert [e.tag for e in result] == [e.tag for e in original]
        for element in original:
            assert result[element.tag].value == element.value
    assert all(o.converted for o in report.outcomes)


def test_statuses_are_classified_and_named(tmp_path: Path) -> None:
    paths = make_files(tmp_path, 4)
    codes = {1: 0x0000, 2: 0xB000, 3: 0xA701, 4: 0xC123}
    with scp(policy=lambda event, n: codes[n]) as (port, _):
        report, _ = _run(port, paths)
    by_status = {o.status: o for o in report.outcomes}
    assert by_status[0x0000].result is Result.STORED
    assert by_status[0xB000].result is Result.WARNING
    assert by_status[0xB000].status_name == "Warning: coercion of data elements"
    assert by_status[0xA701].result is Result.FAILED
    assert by_status[0xA701].status_name == "Refused: out of resources"
    assert by_status[0xC123].status_name == "Error: cannot understand"
    assert not report.all_stored and report.error is None


def test_abort_mid_run_reports_every_file(tmp_path: Path) -> None:
    paths = make_files(tmp_path, 6)
    with scp(policy=lambda event, n: None if n == 3 else 0) as (port, received):
        report, _ = _run(port, paths)
    assert len(report.outcomes) == 6
    assert report.count(Result.STORED) == 2
    failed = [o for o in report.outcomes if o.result is Result.FAILED]
    assert len(failed) == 4
    # Sent whole, unanswered when the peer aborted: it may have been stored (walkthrough 5:
    # a server killed mid-run had stored some of those called "not stored").
    assert "it may have been stored" in (failed[0].reason or "")
    assert all("not sent" in (o.reason or "") for o in failed[1:])
    assert isinstance(report.error, AssociationAborted | ConnectionClosed)
    assert len(received.items) == 2


def test_timeout_reports_the_file_in_flight(tmp_path: Path) -> None:
    paths = make_files(tmp_path, 2)

    def slow(event: Any, n: int) -> int:
        time.sleep(1.5)
        return 0

    with scp(policy=slow) as (port, _):
        report, _ = _run(port, paths, timeout=0.3)
    assert isinstance(report.error, TimeoutExpired)
    assert [o.result for o in report.outcomes] == [Result.FAILED, Result.FAILED]
    assert "DIMSE timeout" in (report.outcomes[0].reason or "")


def test_parallel_associations(tmp_path: Path) -> None:
    make_files(tmp_path, 36)
    with scp() as (port, received):
        report, recorder = _run(port, [tmp_path], associations=3)
    assert report.count(Result.STORED) == 36
    assert len(received.items) == 36
    # The files went over several associations at once. An association still being negotiated
    # when the others have taken every file is given up (a peer serving one association at a
    # time answers it only after them), so on a fast run the third may not be needed.
    assert 2 <= report.associations <= 3
    assert report.associations == len(recorder.opened) == len(received.associations)


def test_unaccepted_sop_class_fails_per_file(tmp_path: Path) -> None:
    make_files(tmp_path / "ct", 2)
    make_files(tmp_path / "mr", 1, sop_class=MR, modality="MR")
    with scp(sop_classes=(CT,)) as (port, _):
        report, _ = _run(port, [tmp_path])
    assert report.count(Result.STORED) == 2
    (mr,) = [o for o in report.outcomes if o.result is Result.FAILED]
    assert "no presentation context" in (mr.reason or "")


def test_no_context_accepted_is_said_once_not_per_file(tmp_path: Path) -> None:
    # The error names the rejected contexts; each file repeated it all (5 files, 5 copies).
    make_files(tmp_path / "mr", 3, sop_class=MR, modality="MR")
    with scp(sop_classes=(CT,)) as (port, _):
        report, _ = _run(port, [tmp_path])
    assert "MR Image Storage" in str(report.error)
    reasons = {o.reason for o in report.outcomes}
    assert reasons == {"not sent: the peer accepted no presentation context (the error says which)"}


def test_nobody_listening(tmp_path: Path) -> None:
    paths = make_files(tmp_path, 2, transfer_syntax=str(ImplicitVRLittleEndian))
    report, _ = _run(free_port(), paths)
    assert isinstance(report.error, ConnectFailed)
    assert [o.result for o in report.outcomes] == [Result.FAILED, Result.FAILED]
    assert all("refused" in (o.reason or "") for o in report.outcomes)


def test_odd_length_data_set_is_re_encoded(tmp_path: Path) -> None:
    (path,) = make_files(tmp_path, 1)
    # Append (0011,0010) LO of length 3: the data set now has an odd length (PS3.5 §7.1 says
    # values are even, but such files exist). It must not be padded mid-stream.
    path.write_bytes(path.read_bytes() + b"\x11\x00\x10\x00LO\x03\x00ABC")
    with scp() as (port, received):
        report, _ = _run(port, [path])
    (outcome,) = report.outcomes
    assert outcome.result is Result.STORED and outcome.converted
    _, data = received.items[outcome.sop_instance_uid or ""]
    assert len(data) % 2 == 0
    assert b"\x11\x00\x10\x00LO\x04\x00ABC " in data  # padded value, even length


def test_compressed_file_not_accepted_fails_clearly(tmp_path: Path) -> None:
    from pydicom.encaps import encapsulate

    jpeg = "1.2.840.10008.1.2.4.50"
    ds = make_dataset()
    # Not a real JPEG stream, but the SCP refuses the context before any byte goes.
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xd9"])
    ds["PixelData"].VR = "OB"
    write_instance(tmp_path / "jpeg.dcm", ds, jpeg)
    make_files(tmp_path / "plain", 1)
    with scp() as (port, received):
        report, _ = _run(port, [tmp_path])
    failed = [o for o in report.outcomes if o.result is Result.FAILED]
    assert len(failed) == 1 and len(received.items) == 1
    assert f"compressed in {jpeg}" in (failed[0].reason or "")


# --- how -j N deals the files out ------------------------------------------------------------


def _infos(count: int) -> list[Any]:
    from netdicom.core.datasets import DicomFile

    return [
        DicomFile(Path(f"f{n}.dcm"), CT, f"1.2.3.{n}", uids.EXPLICIT_VR_LE, 300, 2)
        for n in range(count)
    ]


def test_shares_are_dealt_in_turn_and_one_that_ran_out_takes_from_the_largest() -> None:
    from netdicom.services.store_scu import _Shares

    async def main() -> None:
        share = _Shares(_infos(7), 3)
        taken = [share.next(0).sop_instance_uid for _ in range(3)]  # type: ignore[union-attr]
        assert taken == ["1.2.3.0", "1.2.3.3", "1.2.3.6"]  # its own share, from the front
        # Then from the back of the largest share, whatever its association is doing: no
        # association waits for one still being negotiated.
        assert share.next(0).sop_instance_uid == "1.2.3.4"  # type: ignore[union-attr]
        assert share.next(0).sop_instance_uid == "1.2.3.5"  # type: ignore[union-attr]
        assert share.next(1).sop_instance_uid == "1.2.3.1"  # type: ignore[union-attr]
        emptied = asyncio.ensure_future(share.emptied())
        await asyncio.sleep(0)
        assert share.left() and not emptied.done()
        assert share.next(0).sop_instance_uid == "1.2.3.2"  # type: ignore[union-attr]
        await asyncio.wait_for(emptied, 1)  # every file taken: negotiations are given up
        assert not share.left() and share.next(2) is None and share.remaining() == []

    asyncio.run(main())


def test_files_of_an_association_that_cannot_open_go_out_on_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import netdicom.services.store_scu as store_scu

    make_files(tmp_path, 9)
    real_open = store_scu.open_association
    calls = 0

    async def flaky_open(*args: Any, **kwargs: Any) -> Association:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectFailed("refused (test)")
        return await real_open(*args, **kwargs)

    monkeypatch.setattr(store_scu, "open_association", flaky_open)
    with scp() as (port, received):
        report, _ = _run(port, [tmp_path], associations=3)
    assert report.count(Result.STORED) == 9
    assert len(received.items) == 9
    assert report.associations == 2
    assert isinstance(report.error, ConnectFailed)


# --- a file that changes between planning and its turn to be sent ---------------------------


def _replace_with(path: Path, other: Path) -> None:
    """Another file put in its place, as `mv` does (a new inode)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(other.read_bytes())
    tmp.replace(path)


def test_a_file_cut_short_after_planning_fails_alone(tmp_path: Path) -> None:
    paths = make_files(tmp_path, 4, rows=64, columns=64)
    found = scan([tmp_path], recursive=True)
    cut = paths[1]
    cut.write_bytes(cut.read_bytes()[:1000])  # in place: same inode, shorter
    with scp() as (port, received):
        report, _ = _run(port, [], found=found)
    assert report.error is None and report.associations == 1
    (failed,) = [o for o in report.outcomes if o.result is Result.FAILED]
    assert failed.path == cut
    assert (failed.reason or "").startswith("changed since it was checked: ")
    assert report.count(Result.STORED) == 3 and len(received.items) == 3


def test_a_file_replaced_by_another_instance_is_not_sent_as_it_is(tmp_path: Path) -> None:
    paths = make_files(tmp_path / "in", 3, rows=64, columns=64)
    (other,) = make_files(tmp_path / "other", 1, rows=32, columns=32)
    found = scan([tmp_path / "in"], recursive=True)
    planned = next(f for f in found.files if f.path == paths[2])
    _replace_with(paths[2], other)
    with scp() as (port, received):
        report, _ = _run(port, [], found=found)
    (failed,) = [o for o in report.outcomes if o.result is Result.FAILED]
    assert failed.path == paths[2] and failed.sop_instance_uid == planned.sop_instance_uid
    assert f"SOP Instance UID {planned.sop_instance_uid} is now" in (failed.reason or "")
    assert "data set length" in (failed.reason or "")
    assert len(received.items) == 2 and planned.sop_instance_uid not in received.items
    assert report.error is None


def test_a_file_replaced_by_another_instance_is_not_converted(tmp_path: Path) -> None:
    # The converted path reads the file with pydicom: it used to send the new file's data
    # set under the planned Affected SOP Instance UID, and report the planned one as stored.
    paths = make_files(tmp_path / "in", 2, transfer_syntax=str(ExplicitVRLittleEndian))
    (other,) = make_files(tmp_path / "other", 1, transfer_syntax=str(ExplicitVRLittleEndian))
    found = scan([tmp_path / "in"], recursive=True)
    _replace_with(paths[0], other)
    with scp([uids.IMPLICIT_VR_LE]) as (port, received):
        report, _ = _run(port, [], found=found)
    (failed,) = [o for o in report.outcomes if o.result is Result.FAILED]
    assert failed.path == paths[0]
    assert "changed since it was checked: SOP Instance UID" in (failed.reason or "")
    (stored,) = [o for o in report.outcomes if o.ok]
    assert stored.converted and set(received.items) == {stored.sop_instance_uid}


def cut_while_sent(monkeypatch: pytest.MonkeyPatch, cut: Path) -> None:
    """`cut` is truncated between its pre-send check and the end of its send (the narrow race
    that is left): the open descriptor sees the file end early."""
    import netdicom.services.store_scu as store_scu
    from netdicom.core.datasets import DicomFile, FileSource

    real_checked = FileSource.checked

    def checked_then_cut(info: DicomFile) -> FileSource:
        source = real_checked(info)
        if info.path == cut:
            os.truncate(cut, info.dataset_offset + 64)
        return source

    monkeypatch.setattr(store_scu.FileSource, "checked", checked_then_cut)


def refuse_beyond(monkeypatch: pytest.MonkeyPatch, allowed: int) -> list[int]:
    """Associations beyond the first `allowed` are rejected transient, local limit exceeded
    (PS3.8 Table 9-21 (2,3,2)), as a peer at its association limit answers. The count of
    attempts is returned, in a list the test may reset."""
    import netdicom.services.store_scu as store_scu
    from netdicom.core.errors import AssociationRejected

    real_open = store_scu.open_association
    calls = [0]

    async def limited(*args: Any, **kwargs: Any) -> Association:
        calls[0] += 1
        if calls[0] > allowed:
            raise AssociationRejected(2, 3, 2)
        return await real_open(*args, **kwargs)

    monkeypatch.setattr(store_scu, "open_association", limited)
    return calls


def test_a_file_cut_short_mid_send_costs_its_association_not_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = make_files(tmp_path, 5, rows=64, columns=64)
    cut = paths[2]
    cut_while_sent(monkeypatch, cut)
    with scp() as (port, received):
        report, _ = _run(port, [tmp_path])
    assert report.error is None  # our own abort: no association error (exit 1, not 2 or 6)
    (failed,) = [o for o in report.outcomes if o.result is Result.FAILED]
    assert failed.path == cut
    assert "changed while it was being sent" in (failed.reason or "")
    assert "aborted" in (failed.reason or "")
    # The files after it went over a new association.
    assert report.count(Result.STORED) == 4 and len(received.items) == 4
    assert report.associations == 2 and len(received.associations) == 2


# --- -j N against peers that serve fewer associations ------------------------------------------


def test_an_association_still_negotiating_when_all_is_sent_is_given_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A peer that serves one association at a time (dcmtk storescp without --fork) answers the
    # second A-ASSOCIATE-RQ only after the first association ends: the first must not be held
    # open for it, nor the run wait for it until the ACSE timeout.
    import netdicom.services.store_scu as store_scu

    make_files(tmp_path, 8)
    real_open = store_scu.open_association
    calls = 0

    async def second_never_answered(*args: Any, **kwargs: Any) -> Association:
        nonlocal calls
        calls += 1
        if calls == 2:
            await asyncio.sleep(30)
            raise TimeoutExpired("no answer to the association request (test)")
        return await real_open(*args, **kwargs)

    monkeypatch.setattr(store_scu, "open_association", second_never_answered)
    started = time.monotonic()
    with scp() as (port, received):
        report, _ = _run(port, [tmp_path], associations=2)
    assert time.monotonic() - started < 10
    assert report.error is None and report.all_stored and not report.refused
    assert report.associations == 1 and len(received.items) == 8


def test_an_extra_association_refused_for_lack_of_resources_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_files(tmp_path, 9)
    refuse_beyond(monkeypatch, 1)
    with scp() as (port, received):
        report, _ = _run(port, [tmp_path], associations=3)
    assert report.error is None and report.all_stored and len(received.items) == 9
    assert report.associations == 1 and len(report.refused) == 2


def test_every_association_refused_is_still_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from netdicom.core.errors import AssociationRejected

    make_files(tmp_path, 3)
    refuse_beyond(monkeypatch, 0)
    report, _ = _run(free_port(), [tmp_path], associations=2)
    assert isinstance(report.error, AssociationRejected) and not report.refused
    assert all("not sent: association rejected" in (o.reason or "") for o in report.outcomes)
