"""netdicom.services.planning: scanning paths, presentation contexts, batches, context choice."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from netdicom.core import uids
from netdicom.core.acse import AcceptedContext, ProposedContext
from netdicom.core.datasets import DicomFile, NotSendable
from netdicom.core.sop_classes import storage_sop_classes
from netdicom.services.planning import MAX_CONTEXTS, batches, choose, collect, contexts_for, scan
from tests.dicomfiles import CT, MR, make_dataset, make_files, write_instance

JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"
JPEG2000 = "1.2.840.10008.1.2.4.91"


def _file(
    sop_class: str = CT, ts: str = uids.EXPLICIT_VR_LE, n: int = 0, length: int = 100
) -> DicomFile:
    return DicomFile(Path(f"f{n}.dcm"), sop_class, f"1.2.3.{n}", ts, 300, length)


def test_scan_walks_with_r_and_skips_non_dicom(tmp_path: Path) -> None:
    make_files(tmp_path / "a", 3)
    make_files(tmp_path / "a" / "deeper", 2, transfer_syntax=str(ImplicitVRLittleEndian))
    (tmp_path / "a" / "README.txt").write_text("not dicom")
    result = scan([tmp_path / "a"], recursive=True)
    assert len(result.files) == 5
    assert [s.path.name for s in result.skipped] == ["README.txt"]
    assert not result.skipped[0].failed
    assert result.total_bytes == sum(f.dataset_length for f in result.files)


def test_scan_without_r_lists_the_directory(tmp_path: Path) -> None:
    paths = make_files(tmp_path / "a", 2)
    result = scan([tmp_path / "a", paths[0]], recursive=False)
    assert [f.path for f in result.files] == [paths[0]]
    assert "use -r" in result.skipped[0].reason


def test_collect_missing_path_and_duplicates(tmp_path: Path) -> None:
    paths = make_files(tmp_path, 1)
    files, _ = collect([paths[0], paths[0], tmp_path], recursive=True)
    assert files == [paths[0]]
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        collect([tmp_path / "nothing-here"], recursive=False)


def test_scan_reports_broken_dicom_as_failed(tmp_path: Path) -> None:
    path = write_instance(tmp_path / "a.dcm", make_dataset(sop_instance_uid="1.2.3.4"))
    raw = path.read_bytes()
    # Corrupt the data set's SOP Instance UID (its second occurrence; the first is the meta's).
    second = raw.index(b"1.2.3.4\0", raw.index(b"1.2.3.4\0") + 1)
    path.write_bytes(raw[:second] + b"1.2.3.9\0" + raw[second + 8 :])
    result = scan([path], recursive=False)
    assert not result.files
    assert result.skipped[0].failed
    assert "differs" in result.skipped[0].reason


def test_contexts_per_sop_class_and_syntax() -> None:
    files = [
        _file(CT, uids.IMPLICIT_VR_LE, 1),
        _file(CT, uids.IMPLICIT_VR_LE, 2),
        _file(CT, uids.EXPLICIT_VR_LE, 3),
        _file(CT, JPEG_LOSSLESS, 4),
        _file(CT, JPEG2000, 5),
        _file(MR, JPEG_LOSSLESS, 6),
    ]
    contexts = contexts_for(files)
    assert contexts == [
        ProposedContext(CT, (JPEG_LOSSLESS,)),
        ProposedContext(CT, (JPEG2000,)),
        # Most files are implicit: offered first so they go as they are...
        ProposedContext(CT, (uids.IMPLICIT_VR_LE, uids.EXPLICIT_VR_LE)),
        # ...and the explicit one gets a context of its own, so it can go as it is too.
        ProposedContext(CT, (uids.EXPLICIT_VR_LE,)),
        ProposedContext(MR, (JPEG_LOSSLESS,)),
        ProposedContext(MR, (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE)),
    ]
    # Never a compressed and an uncompressed syntax in one context.
    for ctx in contexts:
        kinds = {ts in (uids.IMPLICIT_VR_LE, uids.EXPLICIT_VR_LE) for ts in ctx.transfer_syntaxes}
        assert len(kinds) == 1


def test_deflated_and_big_endian_files_get_contexts_of_their_own() -> None:
    files = [_file(CT, uids.DEFLATED_EXPLICIT_VR_LE, 1), _file(CT, uids.EXPLICIT_VR_BE, 2)]
    assert contexts_for(files) == [
        ProposedContext(CT, (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE)),
        ProposedContext(CT, (uids.DEFLATED_EXPLICIT_VR_LE,)),
        ProposedContext(CT, (uids.EXPLICIT_VR_BE,)),
    ]


def test_more_than_128_contexts_make_several_batches() -> None:
    classes = sorted(storage_sop_classes())[:150]
    files = [_file(sop, uids.EXPLICIT_VR_LE, n) for n, sop in enumerate(classes)]
    # One compressed file of the first class: that class needs two contexts, kept together.
    files.append(_file(classes[0], JPEG_LOSSLESS, 999))
    plan = batches(files)
    assert len(plan) == 2
    assert all(len(b.contexts) <= MAX_CONTEXTS for b in plan)
    assert sum(len(b.contexts) for b in plan) == 151
    assert sorted(f.path.name for b in plan for f in b.files) == sorted(f.path.name for f in files)
    for batch in plan:
        offered = {c.abstract_syntax for c in batch.contexts}
        assert {f.sop_class_uid for f in batch.files} == offered


def _accepted(*contexts: tuple[int, str, str]) -> dict[int, AcceptedContext]:
    return {cid: AcceptedContext(cid, sop, ts, True, False) for cid, sop, ts in contexts}


def test_choose_as_is_or_convert() -> None:
    accepted = _accepted((1, CT, uids.EXPLICIT_VR_LE), (3, CT, JPEG_LOSSLESS))
    as_is = choose(accepted, _file(CT, JPEG_LOSSLESS))
    assert (as_is.context.context_id, as_is.convert) == (3, False)
    same = choose(accepted, _file(CT, uids.EXPLICIT_VR_LE))
    assert (same.context.context_id, same.convert) == (1, False)
    converted = choose(accepted, _file(CT, uids.IMPLICIT_VR_LE))
    assert (converted.transfer_syntax, converted.convert) == (uids.EXPLICIT_VR_LE, True)
    for ts in (uids.DEFLATED_EXPLICIT_VR_LE, uids.EXPLICIT_VR_BE):
        assert choose(accepted, _file(CT, ts)).convert


def test_choose_failures_say_why() -> None:
    accepted = _accepted((1, CT, uids.IMPLICIT_VR_LE))
    with pytest.raises(NotSendable, match="compressed"):
        choose(accepted, _file(CT, JPEG2000))
    with pytest.raises(NotSendable, match="no presentation context for SOP class"):
        choose(accepted, _file(MR, uids.EXPLICIT_VR_LE))
    with pytest.raises(NotSendable, match="odd length"):
        choose(_accepted((1, CT, JPEG2000)), _file(CT, JPEG2000, length=101))
    # An odd-length native data set is re-encoded, never padded mid-stream.
    odd = choose(accepted, _file(CT, uids.IMPLICIT_VR_LE, length=101))
    assert odd.convert
    assert choose(accepted, _file(CT, uids.IMPLICIT_VR_LE, length=100)).convert is False
    # Big endian of odd length, accepted only in big endian: said as such (walkthrough 6b:
    # "the peer accepted it only in ...BE, to which netdicom does not convert").
    big = _accepted((1, CT, uids.EXPLICIT_VR_BE))
    with pytest.raises(NotSendable, match=r"odd length .* big endian data is not re-encoded"):
        choose(big, _file(CT, uids.EXPLICIT_VR_BE, length=101))
    both = _accepted((1, CT, uids.EXPLICIT_VR_BE), (3, CT, uids.EXPLICIT_VR_LE))
    assert choose(both, _file(CT, uids.EXPLICIT_VR_BE, length=101)).context.context_id == 3


def test_scan_keeps_transfer_syntax_of_each_file(tmp_path: Path) -> None:
    make_files(tmp_path / "e", 2, transfer_syntax=str(ExplicitVRLittleEndian))
    make_files(tmp_path / "i", 1, transfer_syntax=str(ImplicitVRLittleEndian))
    result = scan([tmp_path], recursive=True)
    assert sorted(f.transfer_syntax for f in result.files) == sorted(
        [uids.EXPLICIT_VR_LE, uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE]
    )


def test_a_file_named_twice_or_through_a_link_is_sent_once(tmp_path: Path) -> None:
    paths = make_files(tmp_path / "in", 2)
    link = tmp_path / "link.dcm"
    link.symlink_to(paths[0])
    (tmp_path / "dirlink").symlink_to(tmp_path / "in", target_is_directory=True)
    files, skipped = collect([paths[0], paths[0], link, tmp_path / "dirlink"], recursive=True)
    assert sorted(p.resolve() for p in files) == sorted(p.resolve() for p in paths)
    assert files[0] == paths[0]  # the name first given is the one reported
    # Every other name is accounted for (it was in no record, walkthrough 6b), not failed.
    assert [s.path for s in skipped] == [paths[0], link, tmp_path / "dirlink" / paths[0].name]
    assert {s.reason for s in skipped} == {f"the same file as {paths[0]} (sent once)"}
    assert not any(s.failed for s in skipped)


def test_a_store_report_repr_does_not_list_every_file() -> None:
    # asyncio.Runner (3.11) formats the main task's result at exit: keep that cheap.
    from netdicom.services.store_scu import FileOutcome, Result, StoreReport

    report = StoreReport([FileOutcome(Path(f"f{n}.dcm"), Result.STORED) for n in range(5000)])
    assert len(repr(report)) < 200
    assert report.count(Result.STORED) == 5000
