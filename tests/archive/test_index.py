"""The archive index against real files: rebuild, reconcile, every matching rule through SQL
and Python, hierarchical levels in both models, computed attributes, character sets."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.valuerep import PersonName

from netdicom.archive.index import Index, Query
from netdicom.archive.matching import Key, Level, Model
from netdicom.archive.rebuild import index_file, open_index, read_attributes, read_summary
from tests.dicomfiles import MR, SECONDARY_CAPTURE, make_dataset, write_instance

PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
STUDY_UID = 0x0020000D
SERIES_UID = 0x0020000E
SOP_UID = 0x00080018
STUDY_DATE = 0x00080020
STUDY_TIME = 0x00080030
MODALITY = 0x00080060

JAPANESE = "Yamada^Tarou=山田^太郎=やまだ^たろう"


def _archive(root: Path) -> Path:
    """P1 has two studies (S1: two series, 3 CT + 1 SC; S2: 2 MR), P2..P4 one each."""
    files = [
        ("s1/a1.dcm", make_dataset(patient_id="P1", study_uid="1.1", series_uid="1.1.1",
                                   sop_instance_uid="1.1.1.1", instance_number=1)),
        ("s1/a2.dcm", make_dataset(patient_id="P1", study_uid="1.1", series_uid="1.1.1",
                                   sop_instance_uid="1.1.1.2", instance_number=2)),
        ("s1/a3.dcm", make_dataset(patient_id="P1", study_uid="1.1", series_uid="1.1.1",
                                   sop_instance_uid="1.1.1.3", instance_number=3)),
        ("s1/b1.dcm", make_dataset(patient_id="P1", study_uid="1.1", series_uid="1.1.2",
                                   sop_instance_uid="1.1.2.1", modality="OT",
                                   sop_class=SECONDARY_CAPTURE)),
        ("s2/c1.dcm", make_dataset(patient_id="P1", study_uid="1.2", series_uid="1.2.1",
                                   sop_instance_uid="1.2.1.1", modality="MR", sop_class=MR,
                                   study_date="20240215")),
        ("s2/c2.dcm", make_dataset(patient_id="P1", study_uid="1.2", series_uid="1.2.1",
                                   sop_instance_uid="1.2.1.2", modality="MR", sop_class=MR,
                                   study_date="20240215", instance_number=2)),
        ("p2.dcm", make_dataset(patient_id="P2", patient_name="Müller^Hans", study_uid="2.1",
                                character_set="ISO_IR 100", study_date="20231231")),
        ("p3.dcm", make_dataset(patient_id="P3", patient_name=JAPANESE, study_uid="3.1",
                                character_set="\\ISO 2022 IR 87")),
        ("p4.dcm", make_dataset(patient_id="P4", patient_name="Ærøskøbing^Åse", study_uid="4.1",
                                character_set="ISO_IR 192")),
    ]  # fmt: skip
    for relative, ds in files:
        if relative == "s2/c1.dcm":
            item = Dataset()
            item.CodeValue = "CTHEAD"
            item.CodingSchemeDesignator = "L"
            ds.ProcedureCodeSequence = [item]
            # Patient Study module: about the patient at the time of this study (per study).
            ds.AdditionalPatientHistory = "allergic to contrast"
            # Patient module, on a later study's instance: not the patient's (the first one's).
            ds.PatientComments = "from a later study"
            ds.StudyTime = "231500"
        write_instance(root / relative, ds)
    (root / "notes.txt").write_text("not DICOM")
    return root


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Index, Path]:
    root = _archive(tmp_path_factory.mktemp("archive"))
    index, report = open_index(root)
    assert (report.added, report.skipped, report.total) == (9, 1, 9)
    return index, root


def _find(
    archive: tuple[Index, Path],
    level: Level,
    *keys: Key,
    model: Model = Model.STUDY_ROOT,
    wanted: tuple[int, ...] = (),
    combined: bool = False,
) -> list[dict[int, object]]:
    index, _root = archive
    query = Query(model, level, keys, frozenset(wanted), combined)
    reader = functools.partial(read_attributes, index.directory)
    return [m.record for batch in index.find(query, reader) for m in batch]


def _uids(records: list[dict[int, object]], tag: int) -> list[str]:
    return sorted(str(r[tag][0]) for r in records)  # type: ignore[index]


def test_counts(archive: tuple[Index, Path]) -> None:
    assert archive[0].counts() == {"patient": 4, "study": 5, "series": 6, "instance": 9}


def test_universal_study_query_returns_every_study(archive: tuple[Index, Path]) -> None:
    found = _find(archive, Level.STUDY, Key(STUDY_UID, "UI", ""))
    assert _uids(found, STUDY_UID) == ["1.1", "1.2", "2.1", "3.1", "4.1"]


def test_single_value_wildcard_and_uid_list(archive: tuple[Index, Path]) -> None:
    assert _uids(_find(archive, Level.STUDY, Key(PATIENT_ID, "LO", "P1")), STUDY_UID) == [
        "1.1",
        "1.2",
    ]
    assert _uids(_find(archive, Level.STUDY, Key(PATIENT_ID, "LO", "P?")), STUDY_UID) == [
        "1.1",
        "1.2",
        "2.1",
        "3.1",
        "4.1",
    ]
    found = _find(archive, Level.STUDY, Key(STUDY_UID, "UI", "2.1\\4.1\\9.9"))
    assert _uids(found, STUDY_UID) == ["2.1", "4.1"]


def test_person_name_through_the_index(archive: tuple[Index, Path]) -> None:
    assert _uids(_find(archive, Level.STUDY, Key(PATIENT_NAME, "PN", "doe^john")), STUDY_UID) == [
        "1.1",
        "1.2",
    ]
    assert _uids(_find(archive, Level.STUDY, Key(PATIENT_NAME, "PN", "mü*")), STUDY_UID) == ["2.1"]
    assert _uids(_find(archive, Level.STUDY, Key(PATIENT_NAME, "PN", "山田*")), STUDY_UID) == [
        "3.1"
    ]
    assert _uids(_find(archive, Level.STUDY, Key(PATIENT_NAME, "PN", "YAMADA")), STUDY_UID) == []


def test_person_name_question_mark_through_the_index(tmp_path: Path) -> None:
    # The SQL prefilter (GLOB on the folded alphabetic group) keeps "ß" one character too.
    write_instance(tmp_path / "a.dcm", make_dataset(patient_name="Größe^Jörg", study_uid="5.1",
                                                    character_set="ISO_IR 192"))  # fmt: skip
    index, _ = open_index(tmp_path)
    try:
        for query in ("Gr??e*", "GRÖßE^JÖRG", "gr?ße^j?rg"):
            found = _find((index, tmp_path), Level.STUDY, Key(PATIENT_NAME, "PN", query))
            assert _uids(found, STUDY_UID) == ["5.1"], query
    finally:
        index.close()


def test_date_range_and_time(archive: tuple[Index, Path]) -> None:
    found = _find(archive, Level.STUDY, Key(STUDY_DATE, "DA", "20240101-20240131"))
    assert _uids(found, STUDY_UID) == ["1.1", "3.1", "4.1"]
    assert _uids(_find(archive, Level.STUDY, Key(STUDY_DATE, "DA", "-20231231")), STUDY_UID) == [
        "2.1"
    ]
    found = _find(archive, Level.STUDY, Key(STUDY_TIME, "TM", "2300-"))
    assert _uids(found, STUDY_UID) == ["1.2"]


def test_combined_date_time(archive: tuple[Index, Path]) -> None:
    # 2024-02-15 23:15 is inside 2024-02-15 22:00 .. 2024-02-16 06:00 only when combined.
    keys = (Key(STUDY_DATE, "DA", "20240215-20240216"), Key(STUDY_TIME, "TM", "2200-0600"))
    assert _uids(_find(archive, Level.STUDY, *keys, combined=True), STUDY_UID) == ["1.2"]
    assert _uids(_find(archive, Level.STUDY, *keys, combined=False), STUDY_UID) == []


def test_sequence_matching_reads_the_file(archive: tuple[Index, Path]) -> None:
    code_value = 0x00080100
    sequence = 0x00081032
    hit = Key(sequence, "SQ", items=(Key(code_value, "SH", "CTHEAD"),))
    miss = Key(sequence, "SQ", items=(Key(code_value, "SH", "MRKNEE"),))
    found = _find(archive, Level.STUDY, hit)
    assert _uids(found, STUDY_UID) == ["1.2"]
    assert found[0][sequence] == [{code_value: ("CTHEAD",), 0x00080102: ("L",)}]
    assert _find(archive, Level.STUDY, miss) == []


def test_optional_key_read_from_file(archive: tuple[Index, Path]) -> None:
    history = 0x001021B0
    found = _find(archive, Level.STUDY, Key(STUDY_UID, "UI", "1.2"), wanted=(history,))
    assert found[0][history] == ("allergic to contrast",)
    found = _find(archive, Level.STUDY, Key(history, "LT", "*contrast"))
    assert _uids(found, STUDY_UID) == ["1.2"]
    # A Patient module attribute is the patient's, from its first instance, in every study
    # (walkthrough 7b): the later study's own value is not it.
    comments = 0x00104000
    found = _find(archive, Level.STUDY, Key(PATIENT_ID, "LO", "P1"), wanted=(comments,))
    assert sorted(_uids(found, STUDY_UID)) == ["1.1", "1.2"]
    assert all(record[comments] == () for record in found)


def test_computed_attributes(archive: tuple[Index, Path]) -> None:
    wanted = (0x00201206, 0x00201208, 0x00080061, 0x00080062)
    (s1,) = _find(archive, Level.STUDY, Key(STUDY_UID, "UI", "1.1"), wanted=wanted)
    assert s1[0x00201206] == ("2",)
    assert s1[0x00201208] == ("4",)
    assert s1[0x00080061] == ("CT", "OT")
    assert s1[0x00080062] == ("1.2.840.10008.5.1.4.1.1.2", SECONDARY_CAPTURE)
    # Matching on a computed attribute: studies with an MR series.
    found = _find(archive, Level.STUDY, Key(0x00080061, "CS", "MR"))
    assert _uids(found, STUDY_UID) == ["1.2"]
    (series,) = _find(archive, Level.SERIES, Key(SERIES_UID, "UI", "1.1.1"), wanted=(0x00201209,))
    assert series[0x00201209] == ("3",)


def test_patient_root_levels(archive: tuple[Index, Path]) -> None:
    wanted = (0x00201200, 0x00201204)
    found = _find(
        archive, Level.PATIENT, Key(PATIENT_ID, "LO", "P1"), model=Model.PATIENT_ROOT, wanted=wanted
    )
    assert len(found) == 1
    assert found[0][0x00201200] == ("2",)
    assert found[0][0x00201204] == ("6",)
    studies = _find(
        archive,
        Level.STUDY,
        Key(PATIENT_ID, "LO", "P1"),
        Key(STUDY_UID, "UI", ""),
        model=Model.PATIENT_ROOT,
    )
    assert _uids(studies, STUDY_UID) == ["1.1", "1.2"]


def test_series_and_image_levels_below_a_study(archive: tuple[Index, Path]) -> None:
    series = _find(archive, Level.SERIES, Key(STUDY_UID, "UI", "1.1"), Key(MODALITY, "CS", ""))
    assert _uids(series, SERIES_UID) == ["1.1.1", "1.1.2"]
    images = _find(
        archive,
        Level.IMAGE,
        Key(STUDY_UID, "UI", "1.1"),
        Key(SERIES_UID, "UI", "1.1.1"),
        Key(0x00200013, "IS", "2"),
    )
    assert _uids(images, SOP_UID) == ["1.1.1.2"]


def test_character_sets_decoded(archive: tuple[Index, Path]) -> None:
    names = {
        str(r[PATIENT_ID][0]): r[PATIENT_NAME][0]  # type: ignore[index]
        for r in _find(archive, Level.STUDY, Key(PATIENT_NAME, "PN", ""))
    }
    assert names["P2"] == "Müller^Hans"
    assert names["P3"] == JAPANESE
    assert names["P4"] == "Ærøskøbing^Åse"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(b"K\xc3\xb6nig^Jens", "König^Jens"), (b"K\xf6nig^Jens", "König^Jens")],
    ids=["utf8-undeclared", "latin1-undeclared"],
)
def test_fallback_for_undeclared_8_bit_text(tmp_path: Path, raw: bytes, expected: str) -> None:
    ds = make_dataset()
    ds.PatientName = PersonName(raw)
    write_instance(tmp_path / "x.dcm", ds)
    assert read_summary(tmp_path, "x.dcm").values[PATIENT_NAME] == expected


def test_reconcile_adds_and_removes(tmp_path: Path) -> None:
    root = _archive(tmp_path)
    index, _ = open_index(root)
    (root / "s2" / "c2.dcm").unlink()
    write_instance(root / "new.dcm", make_dataset(patient_id="P9", study_uid="9.1"))
    index.close()
    index, report = open_index(root)
    assert (report.added, report.removed, report.total) == (1, 1, 9)
    (s2,) = _find((index, root), Level.STUDY, Key(STUDY_UID, "UI", "1.2"), wanted=(0x00201208,))
    assert s2[0x00201208] == ("1",)


def test_removing_the_last_instance_removes_the_entities(tmp_path: Path) -> None:
    root = _archive(tmp_path)
    index, _ = open_index(root)
    index.remove(["p2.dcm"])
    assert index.counts() == {"patient": 3, "study": 4, "series": 5, "instance": 8}
    index.remove(["s1/b1.dcm"])
    (s1,) = _find((index, root), Level.STUDY, Key(STUDY_UID, "UI", "1.1"), wanted=(0x00080062,))
    assert s1[0x00080062] == ("1.2.840.10008.5.1.4.1.1.2",)


def test_damaged_index_is_rebuilt(tmp_path: Path) -> None:
    root = _archive(tmp_path)
    index, _ = open_index(root)
    index.close()
    index.path.write_bytes(b"this is not a database" * 100)
    index, report = open_index(root)
    assert report.total == 9
    assert list(index.path.parent.glob("*.damaged"))


def test_index_file_hook_and_replacement(tmp_path: Path) -> None:
    index, _ = open_index(tmp_path)
    path = write_instance(tmp_path / "a.dcm", make_dataset(sop_instance_uid="5.5", study_uid="5"))
    index_file(index, path)
    index_file(index, path)  # the same instance again: still one
    assert index.counts()["instance"] == 1
    # A second file of the same instance kept beside it ("rename"): the index keeps the first.
    copy = write_instance(tmp_path / "a_1.dcm", make_dataset(sop_instance_uid="5.5", study_uid="5"))
    index_file(index, copy, keep_existing=True)
    assert index.sop_instance_paths(["5.5"]) == {"5.5": "a.dcm"}


def test_same_instance_at_a_new_path_keeps_counters_right(tmp_path: Path) -> None:
    index, _ = open_index(tmp_path)
    first = write_instance(tmp_path / "a.dcm", make_dataset(sop_instance_uid="6.6", study_uid="6"))
    index_file(index, first)
    moved = tmp_path / "b.dcm"
    first.rename(moved)
    index_file(index, moved)
    assert index.sop_instance_paths(["6.6"]) == {"6.6": "b.dcm"}
    assert index.counts() == {"patient": 1, "study": 1, "series": 1, "instance": 1}
    (study,) = _find(
        (index, tmp_path), Level.STUDY, Key(STUDY_UID, "UI", "6"), wanted=(0x00201208,)
    )
    assert study[0x00201208] == ("1",)


def test_an_instance_stored_again_updates_its_patient_study_and_series(tmp_path: Path) -> None:
    # --on-duplicate overwrite with a corrected instance: C-FIND answered the first version's
    # patient name and study description for ever (a restart did not help either).
    index, _ = open_index(tmp_path)
    first = make_dataset(sop_instance_uid="7.7", study_uid="7", patient_name="WRONG^NAME")
    first.StudyDescription = "typo"
    first.SeriesDescription = "old"
    path = write_instance(tmp_path / "a.dcm", first)
    index_file(index, path)
    corrected = make_dataset(sop_instance_uid="7.7", study_uid="7", patient_name="RIGHT^NAME")
    corrected.StudyDescription = "corrected"
    corrected.SeriesDescription = "new"
    write_instance(path, corrected)
    index_file(index, path)
    assert index.counts() == {"patient": 1, "study": 1, "series": 1, "instance": 1}
    (study,) = _find(
        (index, tmp_path),
        Level.STUDY,
        Key(STUDY_UID, "UI", "7"),
        wanted=(0x00100010, 0x00081030, 0x00201208),
    )
    assert str(study[0x00100010][0]) == "RIGHT^NAME"  # type: ignore[index]
    assert study[0x00081030] == ("corrected",)
    assert study[0x00201208] == ("1",)
    (series,) = _find(
        (index, tmp_path), Level.SERIES, Key(STUDY_UID, "UI", "7"), wanted=(0x0008103E,)
    )
    assert series[0x0008103E] == ("new",)
    # Matching uses the new values too.
    assert _find((index, tmp_path), Level.STUDY, Key(0x00100010, "PN", "RIGHT*"))
    assert not _find((index, tmp_path), Level.STUDY, Key(0x00100010, "PN", "WRONG*"))


def test_a_corrected_patient_id_moves_the_study(tmp_path: Path) -> None:
    # Walkthrough 5: an instance sent again with a corrected PatientID (overwrite; the layout
    # puts it at another path) left the study under the wrong patient, and a query for the
    # right PatientID found nothing.
    index, _ = open_index(tmp_path)
    for number in (1, 2):
        ds = make_dataset(patient_id="WRONG01", patient_name="Wrong^Patient", study_uid="8",
                          series_uid="8.0", sop_instance_uid=f"8.{number}")  # fmt: skip
        index_file(index, write_instance(tmp_path / f"wrong/{number}.dcm", ds))
    fixed = make_dataset(patient_id="RIGHT01", patient_name="Right^Patient", study_uid="8",
                         series_uid="8.0", sop_instance_uid="8.1")  # fmt: skip
    (tmp_path / "wrong/1.dcm").unlink()
    index_file(index, write_instance(tmp_path / "right/1.dcm", fixed))
    assert index.counts() == {"patient": 1, "study": 1, "series": 1, "instance": 2}
    (patient,) = _find(
        (index, tmp_path), Level.PATIENT, model=Model.PATIENT_ROOT,
        wanted=(PATIENT_ID, PATIENT_NAME, 0x00201200, 0x00201204),
    )  # fmt: skip
    assert patient[PATIENT_ID] == ("RIGHT01",)
    assert str(patient[PATIENT_NAME][0]) == "Right^Patient"  # type: ignore[index]
    assert patient[0x00201200] == ("1",) and patient[0x00201204] == ("2",)  # studies, instances
    assert _find((index, tmp_path), Level.STUDY, Key(PATIENT_ID, "LO", "RIGHT01"))
    assert not _find((index, tmp_path), Level.STUDY, Key(PATIENT_ID, "LO", "WRONG01"))


def test_a_new_instance_naming_another_patient_joins_its_study_owner(tmp_path: Path) -> None:
    # Not a correction: the study stays with its first patient, and no empty patient row is
    # left for the other PatientID (one was made before the study was looked at).
    index, _ = open_index(tmp_path)
    first = make_dataset(patient_id="P1", study_uid="9", series_uid="9.0", sop_instance_uid="9.1")
    index_file(index, write_instance(tmp_path / "a.dcm", first))
    other = make_dataset(patient_id="P2", study_uid="9", series_uid="9.0", sop_instance_uid="9.2")
    index_file(index, write_instance(tmp_path / "b.dcm", other))
    assert index.counts() == {"patient": 1, "study": 1, "series": 1, "instance": 2}
    third = make_dataset(patient_id="P2", study_uid="10", sop_instance_uid="10.1")
    index_file(index, write_instance(tmp_path / "c.dcm", third))
    studies = _find((index, tmp_path), Level.STUDY, Key(PATIENT_ID, "LO", "P2"))
    assert _uids(studies, STUDY_UID) == ["10"]  # P2's own study, under P2


def test_stored_path_answers_before_and_after_the_commit(tmp_path: Path) -> None:
    # serve asks for every instance it stores whether its UID is already stored elsewhere.
    from netdicom.archive.rebuild import captured_summary

    index, _ = open_index(tmp_path)
    ds = make_dataset(sop_instance_uid="11.1", study_uid="11")
    path = write_instance(tmp_path / "p/a.dcm", ds)
    assert index.stored_path("11.1") is None
    values = {SOP_UID: b"11.1", STUDY_UID: b"11"}
    index.add_later(
        lambda: captured_summary(tmp_path, path, values, "1.2.840.10008.1.2.1"),
        sop_instance_uid="11.1",
        path="p/a.dcm",
    )
    assert index.stored_path("11.1") == "p/a.dcm"  # queued: from memory
    index.flush()
    assert index._fresh == {}  # committed: no longer held in memory
    assert index.stored_path("11.1") == "p/a.dcm"  # from the lookup connection
    assert index.stored_path("11.2") is None
    # A lookup connection gone bad (a long-running serve had one that read no rows): the
    # writer's connection answers, and the next lookup gets a fresh one.
    index._lookup.conn.close()
    assert index.stored_path("11.1") == "p/a.dcm"
    assert index.stored_path("11.1") == "p/a.dcm"
    index.close()


def test_a_file_cut_short_is_not_indexed_and_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Cut short while serve was down, it was indexed again without a word: C-FIND offered an
    # instance no retrieve could deliver.
    whole = write_instance(tmp_path / "a.dcm", make_dataset(sop_instance_uid="12.1"))
    cut = write_instance(tmp_path / "b.dcm", make_dataset(sop_instance_uid="12.2"))
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    with caplog.at_level("WARNING", logger="netdicom"):
        index, report = open_index(tmp_path)
    assert index.sop_instance_paths(["12.1", "12.2"]) == {"12.1": whole.name}
    assert report.skipped == 1
    assert "b.dcm is damaged" in caplog.text and "truncated" in caplog.text


def test_relative_path_as_the_index_keeps_it(tmp_path: Path) -> None:
    from netdicom.archive.rebuild import relative_path

    assert relative_path(tmp_path, tmp_path / "P1" / "1.2" / "3.dcm") == "P1/1.2/3.dcm"
    assert relative_path(Path(f"{tmp_path}/"), tmp_path / "a.dcm") == "a.dcm"
    # Not below it as written: what relpath says (a cut string would be wrong here).
    assert relative_path(tmp_path / "arch", tmp_path / "archive2" / "a.dcm") == "../archive2/a.dcm"


def test_a_full_disk_delays_indexing_and_breaks_nothing(tmp_path: Path) -> None:
    # Walk-through 4: one failed COMMIT (SQLITE_FULL) left the index in a state where every
    # later flush failed ("no transaction is active") and every C-FIND with it, until a
    # restart, even once space was freed. A full database is simulated with max_page_count.
    from netdicom.archive.rebuild import read_summary

    write_instance(tmp_path / "a.dcm", make_dataset(patient_id="P1", study_uid="8.1"))
    index, _ = open_index(tmp_path)
    try:
        conn = index._conn
        assert conn is not None
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")
        for number in range(2, 40):
            name = f"{number}.dcm"
            write_instance(tmp_path / name,
                           make_dataset(patient_id=f"P{number}", study_uid=f"8.{number}"))  # fmt: skip
            index.add_later(functools.partial(read_summary, tmp_path, name))
        index.flush()  # cannot write: no exception, the instances stay queued
        assert index.pending == 38
        found = _find((index, tmp_path), Level.STUDY, Key(STUDY_UID, "UI", ""))
        assert _uids(found, STUDY_UID) == ["8.1"]  # queries go on with what is committed
        conn.execute("PRAGMA max_page_count = 1000000")  # space freed
        index.flush()
        assert index.pending == 0
        found = _find((index, tmp_path), Level.STUDY, Key(STUDY_UID, "UI", ""))
        assert len(found) == 39
        assert index.counts()["instance"] == 39
    finally:
        index.close()


def test_an_index_that_cannot_be_opened_is_not_taken_for_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Walk-through 4: on a full (or read-only) file system serve renamed a valid index to
    # *.damaged, then died with "internal error"; a rebuild followed once space was back.
    import sqlite3

    from netdicom.archive import index as index_module
    from netdicom.archive.index import Index, IndexUnavailable

    write_instance(tmp_path / "a.dcm", make_dataset(study_uid="9.1"))
    first, _ = open_index(tmp_path)
    first.close()

    def full(path: Path) -> sqlite3.Connection:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(index_module, "_connect", full)
    with pytest.raises(IndexUnavailable, match="database or disk is full") as raised:
        Index(tmp_path).open()
    assert isinstance(raised.value, OSError)  # exit code 3 (bad input), not "internal error"
    assert index_module.index_path(tmp_path).exists()
    assert not list(index_module.index_path(tmp_path).parent.glob("*.damaged"))


def test_an_index_removed_while_serving_says_so_and_is_not_made_again(tmp_path: Path) -> None:
    # Walk-through 4: each query made an empty index.sqlite again and failed with "no such
    # table: patient" (and a traceback), the operator not told what to do.
    from netdicom.archive.index import IndexUnusable, index_path

    write_instance(tmp_path / "a.dcm", make_dataset(study_uid="9.2"))
    index, _ = open_index(tmp_path)
    try:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{index_path(tmp_path)}{suffix}").unlink(missing_ok=True)
        with pytest.raises(IndexUnusable, match="restart serve to rebuild it"):
            _find((index, tmp_path), Level.STUDY, Key(STUDY_UID, "UI", ""))
        assert not index_path(tmp_path).exists()
    finally:
        index.close()


def test_studies_without_a_patient_id_keep_their_own_patient(tmp_path: Path) -> None:
    # Walkthrough 6b: every instance with an empty (or no) PatientID was filed under one
    # patient, answered with the first one's name: a query by the others' names found nothing.
    index, _ = open_index(tmp_path)
    for number, name in enumerate(("First^Person", "Second^Person", "Third^Person")):
        ds = make_dataset(patient_id="", patient_name=name, study_uid=f"7.{number}")
        index_file(index, write_instance(tmp_path / f"{number}.dcm", ds))
    more = make_dataset(patient_id="", patient_name="Second^Person", study_uid="7.1",
                        series_uid="7.1.9", sop_instance_uid="7.1.9.1")  # fmt: skip
    index_file(index, write_instance(tmp_path / "3.dcm", more))  # the same study: its patient
    assert index.counts() == {"patient": 3, "study": 3, "series": 4, "instance": 4}
    found = _find((index, tmp_path), Level.STUDY, Key(PATIENT_NAME, "PN", "Second*"))
    assert _uids(found, STUDY_UID) == ["7.1"]
    named = _find((index, tmp_path), Level.STUDY, wanted=(STUDY_UID, PATIENT_NAME))
    assert sorted(str(r[PATIENT_NAME][0]) for r in named) == [  # type: ignore[index]
        "First^Person", "Second^Person", "Third^Person"
    ]  # fmt: skip
    # A Patient ID still identifies its patient across studies.
    for number in (1, 2):
        ds = make_dataset(patient_id="P9", patient_name="Known^Person", study_uid=f"6.{number}")
        index_file(index, write_instance(tmp_path / f"p{number}.dcm", ds))
    assert index.counts()["patient"] == 4


def test_a_rebuild_takes_a_patient_s_attributes_from_its_oldest_file(tmp_path: Path) -> None:
    # Walkthrough 6d: rebuilt in path order, the index answered whichever name the walk met
    # first; live, the first instance stored sets it. Oldest file first gives the same.
    import os

    for number, (folder, name) in enumerate((("b", "First^Stored"), ("a", "Later^Name"))):
        ds = make_dataset(patient_id="P1", patient_name=name, study_uid=f"5.{number}",
                          sop_instance_uid=f"5.{number}.1")  # fmt: skip
        path = write_instance(tmp_path / folder / "x.dcm", ds)
        os.utime(path, ns=(10**18 + number * 10**9,) * 2)
    copy = tmp_path / "c" / "x.dcm"  # a second copy of the first instance, newer
    copy.parent.mkdir()
    copy.write_bytes((tmp_path / "b" / "x.dcm").read_bytes())
    index, report = open_index(tmp_path)
    (patient,) = _find((index, tmp_path), Level.PATIENT, model=Model.PATIENT_ROOT,
                       wanted=(PATIENT_ID, PATIENT_NAME))  # fmt: skip
    assert str(patient[PATIENT_NAME][0]) == "First^Stored"  # type: ignore[index]
    assert report.skipped == 1
    assert index.stored_path("5.0.1") == "b/x.dcm"


def test_an_index_of_another_schema_is_rebuilt_without_a_damaged_copy(tmp_path: Path) -> None:
    # Walkthrough 6b: after an upgrade that changed the schema the old index was logged as
    # damaged and left behind as index.sqlite.damaged.
    import sqlite3

    from netdicom.archive.index import SCHEMA_VERSION

    write_instance(tmp_path / "a.dcm", make_dataset(study_uid="4.1"))
    index, _ = open_index(tmp_path)
    path = index.path
    index.close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    again = Index(path.parent.parent)
    assert again.open() == "outdated"
    again.close()
    assert not list(path.parent.glob("*.damaged"))
    rebuilt, _ = open_index(tmp_path)
    assert rebuilt.counts()["instance"] == 1


@pytest.mark.parametrize("copies_expected", [False, True])
def test_a_second_copy_of_an_instance_is_a_warning_unless_copies_are_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, copies_expected: bool
) -> None:
    # Walkthrough 6a: a store cut short by a kill left second copies, named only at info level
    # (hidden by serve -q) at every start. With --on-duplicate rename they are expected.
    import logging

    ds = make_dataset(sop_instance_uid="3.1")
    write_instance(tmp_path / "a.dcm", ds)
    (tmp_path / "b.dcm").write_bytes((tmp_path / "a.dcm").read_bytes())
    with caplog.at_level(logging.INFO, logger="netdicom"):
        open_index(tmp_path, copies_expected=copies_expected)
    (record,) = [r for r in caplog.records if "not indexed" in r.getMessage()]
    assert record.levelno == (logging.INFO if copies_expected else logging.WARNING)


def test_second_copies_beyond_those_named_are_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    from netdicom.archive import rebuild

    for number in range(rebuild._NAMED_DUPLICATES + 3):
        path = write_instance(tmp_path / f"a{number}.dcm",
                              make_dataset(sop_instance_uid=f"3.{number}"))  # fmt: skip
        (tmp_path / f"b{number}.dcm").write_bytes(path.read_bytes())
    with caplog.at_level(logging.INFO, logger="netdicom"):
        open_index(tmp_path)
    assert "not indexed: 3 more second copies of indexed instances, not named" in caplog.text


def test_a_series_uid_seen_in_two_studies_is_a_series_of_each(tmp_path: Path) -> None:
    # Walkthrough 6a: the second study's instance was filed under the first study (the
    # series row was found by its UID alone), and a C-GET of its own study found nothing.
    index, _ = open_index(tmp_path)
    for study in ("2.1", "2.2"):
        ds = make_dataset(study_uid=study, series_uid="2.9", sop_instance_uid=f"{study}.1")
        index_file(index, write_instance(tmp_path / f"{study}.dcm", ds))
    assert index.counts() == {"patient": 1, "study": 2, "series": 2, "instance": 2}
    found = _find((index, tmp_path), Level.IMAGE, Key(STUDY_UID, "UI", "2.2"),
                  wanted=(STUDY_UID, 0x00080018))  # fmt: skip
    assert _uids(found, 0x00080018) == ["2.2.1"]
