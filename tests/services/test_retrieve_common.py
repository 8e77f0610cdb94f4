"""Retrieve identifiers, the wildcard guard, resolving C-FIND matches, counters and statuses,
the check of the counts a peer reports, and the tidying of the temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from netdicom.archive.matching import Level, Model
from netdicom.core.dimse import status
from netdicom.services.retrieve_common import (
    MAX_UID_LIST_BYTES,
    Counters,
    Progress,
    RetrieveOutcome,
    RetrieveRequest,
    UnsafeRetrieve,
    build_identifier,
    check_counts,
    direct_requests,
    failed_uid_list,
    final_status,
    find_keys,
    is_safe_unique_value,
    model_of,
    resolve_matches,
    tidy_incoming,
)

STUDY_UID = 0x0020000D
SERIES_UID = 0x0020000E
SOP_UID = 0x00080018
PATIENT_ID = 0x00100020
PATIENT_NAME = 0x00100010


@pytest.mark.parametrize(
    ("value", "safe"),
    [("1.2.3", True), ("1.2.3\\1.2.4", True), ("", False), ("*", False), ("1.2.*", False),
     ("1.2.?", False), ("1.2.3\\", False), ("\\1.2.3", False), ("  ", False)],
)  # fmt: skip
def test_safe_unique_values(value: str, safe: bool) -> None:
    assert is_safe_unique_value(value) is safe


@pytest.mark.parametrize("value", ["", "*", "1.2.*", "1.2.3\\"])
def test_wildcard_or_empty_unique_key_is_refused(value: str) -> None:
    with pytest.raises(UnsafeRetrieve, match="refusing"):
        direct_requests(Model.STUDY_ROOT, Level.STUDY, {STUDY_UID: value})


def test_only_universal_keys_are_refused() -> None:
    with pytest.raises(UnsafeRetrieve):
        direct_requests(Model.STUDY_ROOT, Level.STUDY, {PATIENT_NAME: "*"})


def test_unique_keys_are_retrieved_directly() -> None:
    requests = direct_requests(
        Model.STUDY_ROOT, Level.SERIES, {STUDY_UID: "1.2.3", SERIES_UID: "1.2.3.1\\1.2.3.2"}
    )
    assert requests == [
        RetrieveRequest(Level.SERIES, ((STUDY_UID, "1.2.3"),), SERIES_UID, ("1.2.3.1", "1.2.3.2"))
    ]
    ds = build_identifier(requests[0], Model.STUDY_ROOT)
    assert ds.QueryRetrieveLevel == "SERIES"
    assert ds.StudyInstanceUID == "1.2.3"
    assert list(ds.SeriesInstanceUID) == ["1.2.3.1", "1.2.3.2"]
    # Unique keys only (PS3.4 C.4.2.2.1).
    assert {int(t) for t in ds.keys()} == {0x00080052, STUDY_UID, SERIES_UID}  # noqa: SIM118


def test_list_above_the_level_is_refused() -> None:
    with pytest.raises(UnsafeRetrieve, match="single value"):
        direct_requests(Model.STUDY_ROOT, Level.SERIES, {STUDY_UID: "1\\2", SERIES_UID: "1.2"})


def test_other_keys_need_a_find() -> None:
    assert direct_requests(Model.STUDY_ROOT, Level.STUDY, {PATIENT_NAME: "DOE*"}) is None
    # A series UID without its study UID is not a hierarchical retrieve: resolved first.
    assert direct_requests(Model.STUDY_ROOT, Level.SERIES, {SERIES_UID: "1.2"}) is None
    keys = find_keys(Model.STUDY_ROOT, Level.STUDY, {PATIENT_NAME: "DOE*"})
    assert keys[STUDY_UID] == "" and 0x00080062 in keys and 0x00201208 in keys


def test_patient_root_identifier_carries_patient_id() -> None:
    requests = direct_requests(
        Model.PATIENT_ROOT, Level.STUDY, {PATIENT_ID: "P1", STUDY_UID: "1.2"}
    )
    assert requests is not None
    ds = build_identifier(requests[0], Model.PATIENT_ROOT)
    assert ds.PatientID == "P1" and ds["PatientID"].VR == "LO"


def _match(**values: object) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def test_resolve_groups_by_parent_and_skips_unsafe_matches() -> None:
    matches = [
        _match(StudyInstanceUID="1.1", SeriesInstanceUID="1.1.1", NumberOfSeriesRelatedInstances=3),
        _match(StudyInstanceUID="1.1", SeriesInstanceUID="1.1.2", NumberOfSeriesRelatedInstances=2),
        _match(StudyInstanceUID="1.1", SeriesInstanceUID="1.1.2", NumberOfSeriesRelatedInstances=2),
        _match(StudyInstanceUID="1.2", SeriesInstanceUID="1.2.1", NumberOfSeriesRelatedInstances=1),
        _match(StudyInstanceUID="1.3", SeriesInstanceUID="*"),  # hostile or broken SCP
        _match(StudyInstanceUID="", SeriesInstanceUID="1.4.1"),
    ]
    result = resolve_matches(Model.STUDY_ROOT, Level.SERIES, matches)
    assert result.entities == 3
    assert result.instances == 6
    assert len(result.skipped) == 2
    assert result.requests == [
        RetrieveRequest(Level.SERIES, ((STUDY_UID, "1.1"),), SERIES_UID, ("1.1.1", "1.1.2")),
        RetrieveRequest(Level.SERIES, ((STUDY_UID, "1.2"),), SERIES_UID, ("1.2.1",)),
    ]


def test_resolve_collects_sop_classes_and_splits_long_lists() -> None:
    matches = [
        _match(StudyInstanceUID=f"1.{n}", SOPClassesInStudy=["1.2.840.10008.5.1.4.1.1.2"])
        for n in range(5)
    ]
    result = resolve_matches(Model.STUDY_ROOT, Level.STUDY, matches, max_list=2)
    assert result.sop_classes == {"1.2.840.10008.5.1.4.1.1.2"}
    assert [len(r.values) for r in result.requests] == [2, 2, 1]
    assert result.instances is None  # the peer did not say


def test_final_status() -> None:
    assert final_status(Counters(0), cancelled=False) == status.SUCCESS
    assert final_status(Counters(2, completed=2), cancelled=False) == status.SUCCESS
    some = Counters(2, completed=1)
    some.fail("1.2")
    assert final_status(some, cancelled=False) == status.SUBOPERATIONS_WARNING
    assert final_status(Counters(1, warning=1), cancelled=False) == status.SUBOPERATIONS_WARNING
    none = Counters(2)
    none.fail("1")
    none.fail("2")
    assert final_status(none, cancelled=False) == status.OUT_OF_RESOURCES_SUBOPERATIONS
    assert final_status(none, cancelled=True) == status.CANCEL


def test_counts_are_capped() -> None:
    counters = Counters(200_000, completed=70_000)
    assert counters.capped() == (65535, 65535, 0, 0)
    assert counters.remaining == 130_000


def test_failed_list_truncated_to_one_element() -> None:
    uids = [f"1.2.840.99999.{n:020d}" for n in range(4000)]
    kept, comment = failed_uid_list(uids)
    assert len("\\".join(kept)) <= MAX_UID_LIST_BYTES
    assert 0 < len(kept) < len(uids)
    assert comment is not None and f"of {len(uids)}" in comment and len(comment) <= 64
    assert failed_uid_list(uids[:3]) == (uids[:3], None)


def test_model_of() -> None:
    assert model_of("1.2.840.10008.5.1.4.1.2.2.3") == (Model.STUDY_ROOT, "get")
    assert model_of("1.2.840.10008.5.1.4.1.2.1.2") == (Model.PATIENT_ROOT, "move")
    assert model_of("1.2.840.10008.5.1.4.1.2.2.1") is None


def _final(
    code: int, completed: int | None, failed: int | None, warning: int | None
) -> RetrieveOutcome:
    return RetrieveOutcome(code, Progress(None, completed, failed, warning))


def test_counts_checked_against_what_arrived() -> None:
    honest = [_final(status.SUCCESS, 3, 0, 0)]
    assert check_counts("get", honest, 3) == []
    # Warning sub-operations stored their instance too.
    assert check_counts("get", [_final(status.SUBOPERATIONS_WARNING, 2, 0, 1)], 3) == []
    # More arrived than claimed loses nothing; absent counts claim nothing.
    assert check_counts("get", [_final(status.SUCCESS, None, None, None)], 2) == []
    (lie,) = check_counts("get", [_final(status.SUCCESS, 100, 0, 0)], 0)
    assert lie.fails and lie.text == (
        "the peer reports 100 completed sub-operations, but 0 instances were stored here"
    )
    two = [_final(status.SUCCESS, 2, 0, 0), _final(status.SUCCESS, 3, 0, 0)]
    (lie,) = check_counts("move", two, 4)
    assert "reports 5 completed" in lie.text and "4 instances were stored here" in lie.text
    # A move to another AE: nothing to compare with.
    assert check_counts("move", [_final(status.SUCCESS, 500, 0, 0)], None) == []


def test_success_with_failed_or_warning_sub_operations_contradicts_ps34() -> None:
    (problem,) = check_counts("get", [_final(status.SUCCESS, 0, 5, 0)], 1)
    assert problem.fails
    assert "Success (0x0000) but counts 5 failed sub-operations" in problem.text
    assert "C.4.3.2.1" in problem.text
    (problem,) = check_counts("move", [_final(status.SUCCESS, 1, 0, 2)], None)
    assert not problem.fails  # the instances were stored, with a warning
    assert "2 with a warning" in problem.text and "C.4.2.2.1" in problem.text
    # B000 is the status for that: nothing to say.
    assert check_counts("get", [_final(status.SUBOPERATIONS_WARNING, 1, 5, 0)], 1) == []


def test_a_final_response_that_leaves_work_undone_or_lists_failures_fails() -> None:
    # Walkthrough 7c: Success with Remaining 9 of 10 (1 stored), and Success with a Failed
    # SOP Instance UID List, were both reported as complete, exit 0.
    early = RetrieveOutcome(status.SUCCESS, Progress(9, 1, 0, 0), announced=10)
    (problem,) = check_counts("get", [early], 1)
    assert problem.fails
    assert problem.text == (
        "the peer's final response leaves 9 of 10 sub-operations neither completed nor failed"
    )
    short = RetrieveOutcome(status.SUBOPERATIONS_WARNING, Progress(None, 8, 2, 0), announced=15)
    (problem,) = check_counts("move", [short], None)
    assert "leaves 5 of 15 sub-operations" in problem.text
    listed = RetrieveOutcome(status.SUCCESS, Progress(None, 2, 0, 0), ["1.2.3.999.1"])
    (problem,) = check_counts("get", [listed], 2)
    assert problem.fails and "Success (0x0000) but lists 1 failed SOP instance(s)" in problem.text
    # A cancel ends what remains; a failure need not count every announced one.
    cancelled = RetrieveOutcome(status.CANCEL, Progress(7, 3, 0, 0), cancelled=True, announced=10)
    assert check_counts("get", [cancelled], 3) == []
    failure = RetrieveOutcome(0xA701, Progress(None, 0, 0, 0), announced=10)
    assert check_counts("move", [failure], None) == []
    honest = RetrieveOutcome(status.SUCCESS, Progress(0, 10, 0, 0), announced=10)
    assert check_counts("get", [honest], 10) == []
    # Counts left out of a final Success (PS3.7 allows it) claim nothing.
    silent = RetrieveOutcome(status.SUCCESS, Progress(None, None, None, None), announced=10)
    assert check_counts("get", [silent], 10) == []


def test_tidy_incoming_removes_only_an_empty_folder(tmp_path: Path) -> None:
    with tidy_incoming(tmp_path):
        (tmp_path / ".incoming").mkdir()
    assert not (tmp_path / ".incoming").exists()
    with tidy_incoming(tmp_path):
        (tmp_path / ".incoming").mkdir()
        (tmp_path / ".incoming" / "123-1.part").write_bytes(b"being written")
    assert (tmp_path / ".incoming" / "123-1.part").exists()
    (tmp_path / ".incoming" / "123-1.part").unlink()
    # An empty one left before (a retrieve killed with SIGKILL) goes too: it stayed for good.
    # A serve on the same folder makes it again when it needs it (Archive.begin).
    with tidy_incoming(tmp_path):
        pass
    assert not (tmp_path / ".incoming").exists()
    with pytest.raises(RuntimeError), tidy_incoming(tmp_path / "new"):
        (tmp_path / "new" / ".incoming").mkdir(parents=True)
        raise RuntimeError
    assert not (tmp_path / "new" / ".incoming").exists()


def test_a_patient_level_retrieve_names_one_patient_per_request() -> None:
    # Walkthrough 6d: two patients matched became one C-MOVE with PatientID=PAT001\PAT002;
    # dcmqrscp matched no patient and answered success, nothing moved (PS3.4 C.4.2.2.1: one
    # unique key above the study level).
    matches = [_match(PatientID="PAT001"), _match(PatientID="PAT002")]
    result = resolve_matches(Model.PATIENT_ROOT, Level.PATIENT, matches)
    assert [r.values for r in result.requests] == [("PAT001",), ("PAT002",)]
    direct = direct_requests(Model.PATIENT_ROOT, Level.PATIENT, {PATIENT_ID: "PAT001\\PAT002"})
    assert direct is not None and [r.values for r in direct] == [("PAT001",), ("PAT002",)]
    assert build_identifier(direct[1], Model.PATIENT_ROOT).PatientID == "PAT002"


def test_a_non_ascii_patient_id_is_declared_in_the_retrieve_identifier() -> None:
    # Walkthrough 6d: PatientID=MÜ001 went out as Latin-1 with no Specific Character Set.
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    request = RetrieveRequest(Level.PATIENT, (), PATIENT_ID, ("MÜ001",))
    ds = build_identifier(request, Model.PATIENT_ROOT)
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_dataset(buffer, ds)
    assert "MÜ001".encode() in buffer.getvalue()
    plain = build_identifier(
        RetrieveRequest(Level.PATIENT, (), PATIENT_ID, ("M1",)), Model.PATIENT_ROOT
    )
    assert "SpecificCharacterSet" not in plain


def test_kept_existing_counts_files_that_were_there_before_the_run() -> None:
    # Walkthrough 7c: a peer that sent instance A twice into an empty folder was reported as
    # "1 already there: kept", its file older than the peer's copy, though this run wrote it.
    from pathlib import Path
    from types import SimpleNamespace
    from typing import Any

    from netdicom.archive.writer import Outcome
    from netdicom.core.dimse import status
    from netdicom.services.retrieve_common import Kept, Received
    from netdicom.services.store_scp import StoredInstance

    storage: Any = SimpleNamespace(on_placed=[])
    kept = Kept(storage)
    (hook,) = storage.on_placed

    def placed(uid: str, outcome: Outcome) -> None:
        hook(StoredInstance(Path(uid), "1.2.840.10008.5.1.4.1.1.2", uid, "1.2", "AE", 2, outcome))

    placed("1.1", Outcome.STORED)
    placed("1.1", Outcome.KEPT_EXISTING)  # the peer's second copy of this run's file
    placed("1.2", Outcome.KEPT_EXISTING)  # a file of an earlier run
    placed("1.2", Outcome.KEPT_EXISTING)
    received = [Received("1.2.840.10008.5.1.4.1.1.2", uid, status.SUCCESS, None)
                for uid in ("1.1", "1.1", "1.2", "1.2")]  # fmt: skip
    kept.count_in(received)
    assert [r.kept_existing for r in received] == [False, False, True, True]
