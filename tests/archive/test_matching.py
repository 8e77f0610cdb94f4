"""PS3.4 C.2.2.2 matching rules, one by one, as pure functions."""

from __future__ import annotations

import pytest

from netdicom.archive.matching import (
    Key,
    Level,
    Model,
    level_of,
    match_date_time,
    match_key,
    match_person_name,
    match_record,
    match_value,
    normalise_person_name,
    parse_number,
    parse_range,
    wildcard_glob,
)


# "**" too: `*` matches any run of characters, a zero-length value included (PS3.4
# C.2.2.2.4): it left out the empty and absent values (walkthrough 7b).
@pytest.mark.parametrize("query", ["", "*", "**", "***"])
@pytest.mark.parametrize("vr", ["PN", "LO", "DA", "TM", "UI", "IS", "CS"])
def test_universal_matches_present_and_absent(query: str, vr: str) -> None:
    assert match_value(vr, query, ("X",))
    assert match_value(vr, query, ())
    assert match_value(vr, query, ("",))


def test_empty_value_matching() -> None:
    assert match_value("LO", '""', ())
    assert match_value("LO", '""', ("",))
    assert not match_value("LO", '""', ("A",))


def test_single_value_is_exact_and_case_sensitive() -> None:
    assert match_value("LO", "PAT001", ("PAT001",))
    assert not match_value("LO", "pat001", ("PAT001",))
    assert not match_value("LO", "PAT00", ("PAT001",))
    # Padding is not data.
    assert match_value("SH", "ACC1 ", ("ACC1",))


def test_multi_valued_attribute_matches_when_any_value_does() -> None:
    assert match_value("CS", "MR", ("CT", "MR"))
    assert not match_value("CS", "PT", ("CT", "MR"))


def test_a_list_of_text_values_matches_any_of_them() -> None:
    # Walkthrough 7b: `ModalitiesInStudy=CT\\MR` matched nothing (leniency, as Orthanc).
    assert match_value("CS", "CT\\MR", ("MR",))
    assert match_value("CS", "CT\\MR", ("US", "CT"))
    assert not match_value("CS", "CT\\MR", ("US",))
    assert match_value("LO", "PAT1\\PAT2*", ("PAT22",))
    assert match_value("CS", "CT\\", ("CT",)) and not match_value("CS", "CT\\", ("MR",))


def test_uid_list() -> None:
    assert match_value("UI", "1.2.3\\1.2.4", ("1.2.4",))
    assert not match_value("UI", "1.2.3\\1.2.4", ("1.2.5",))
    # UIDs are never wildcards: '*' inside is literal (a lone '*' is universal, see above).
    assert not match_value("UI", "1.2.*", ("1.2.3",))


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("DOE*", "DOE", True),
        ("D?E", "DOE", True),
        ("D?E", "DE", False),
        ("*OE", "JOE", True),
        ("A*B*C", "AxxBxxC", True),
        ("A*B*C", "AxxCxxB", False),
        ("[A]*", "[A]x", True),  # brackets are literal
    ],
)
def test_wildcards(pattern: str, value: str, expected: bool) -> None:
    assert match_value("LO", pattern, (value,)) is expected


def test_wildcard_only_for_wildcard_vrs() -> None:
    # DA is not a wildcard VR: '2024*' is a (non-matching) single value, not a pattern.
    assert not match_value("DA", "2024*", ("20240102",))
    # ...but a lone '*' is universal everywhere (documented leniency).
    assert match_value("DA", "*", ("20240102",))


def test_person_name_case_insensitive_and_trailing_carets() -> None:
    assert match_person_name("doe^john", "DOE^JOHN")
    assert match_person_name("DOE^JOHN^^^", "DOE^JOHN")
    assert match_person_name("DOE", "DOE^")
    assert not match_person_name("DOE", "DOE^JOHN")
    assert match_person_name("doe*", "DOE^JOHN")
    assert normalise_person_name("Doe^John^^=^=") == "DOE^JOHN"


def test_person_name_wildcard_question_mark_is_one_character_whatever_the_case() -> None:
    # C.2.2.2.4: "?" matches one character; str.upper() makes "ß" two ("SS").
    assert match_value("PN", "Gr??e^Ärzt", ("Größe^Ärzt",))
    assert match_value("PN", "gr??e*", ("Größe^Ärzt",))
    assert match_value("PN", "größe^ärzt", ("GRÖßE^ÄRZT",))
    assert not match_value("PN", "GR*SSE^*", ("Größe^Ärzt",))


def test_person_name_component_groups() -> None:
    stored = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert match_person_name("YAMADA*", stored)
    # A lone non-ASCII group may be the ideographic or phonetic one (documented leniency).
    assert match_person_name("山田*", stored)
    assert match_person_name("やまだ^たろう", stored)
    # Several groups: group by group; an empty group matches anything.
    assert match_person_name("Yamada*=山田^太郎", stored)
    assert match_person_name("=山田^太郎", stored)
    assert not match_person_name("Yamada*=鈴木^太郎", stored)
    # An ASCII single group is the alphabetic group only.
    assert not match_person_name("TAROU", stored)


@pytest.mark.parametrize(
    ("query", "value", "expected"),
    [
        ("20240101-20240131", "20240115", True),
        ("20240101-20240131", "20240131", True),
        ("20240101-20240131", "20240201", False),
        ("-20240101", "20231231", True),
        ("20240101-", "20231231", False),
        ("2024.01.01-", "20240101", True),
        ("20240101", "2024.01.01", True),
    ],
)
def test_date_ranges_and_single_dates(query: str, value: str, expected: bool) -> None:
    assert match_value("DA", query, (value,)) is expected


def test_absent_value_never_in_a_range() -> None:
    assert not match_value("DA", "20240101-", ())


@pytest.mark.parametrize(
    ("query", "value", "expected"),
    [
        ("1000-1200", "101500", True),
        ("1000-1200", "120059", True),  # '1200' as an upper bound covers 12:00:xx
        ("1000-1200", "120100", False),
        ("-0900", "085959.123", True),
        ("10", "101500", True),  # single value at hour precision
        ("10", "111500", False),
    ],
)
def test_time_ranges(query: str, value: str, expected: bool) -> None:
    assert match_value("TM", query, (value,)) is expected


def test_datetime_ranges_ignore_offsets() -> None:
    assert match_value("DT", "20240101-20240102", ("20240102235959",))
    assert match_value("DT", "20240101120000+0100-", ("20240101130000",))
    assert not match_value("DT", "-2023", ("20240101",))
    assert parse_range("DA", "-20240101") == (None, "20240101")


def test_numbers_compare_as_numbers() -> None:
    assert match_value("IS", "01", ("1",))
    assert match_value("DS", "1.50", ("1.5",))
    assert not match_value("IS", "2", ("1",))


def test_combined_date_time_across_midnight() -> None:
    # PS3.4 C.2.2.2.5.1: 2024-01-01 22:00 to 2024-01-02 06:00.
    assert match_date_time("20240101-20240102", "2200-0600", ("20240101",), ("230000",))
    assert match_date_time("20240101-20240102", "2200-0600", ("20240102",), ("050000",))
    assert not match_date_time("20240101-20240102", "2200-0600", ("20240101",), ("120000",))
    # Independent matching would have refused 23:00 (not within 22:00-06:00 as a TM range).
    assert not match_value("TM", "2200-0600", ("230000",))


def test_combined_date_time_only_for_ranges_of_the_same_form() -> None:
    # C.2.2.2.5.1: a range with a single value is matched key by key: 10:15 on any day of
    # January, not 1 January 10:15 to 31 January 10:15.
    january = "20240101-20240131"
    assert match_date_time(january, "1015", ("20240115",), ("101500",))
    assert not match_date_time(january, "1015", ("20240120",), ("083000",))
    # Open ranges of different forms: each key on its own (11:30 is not up to 10:00).
    assert match_date_time("20240101-", "-1000", ("20240120",), ("083000",))
    assert not match_date_time("20240101-", "-1000", ("20240120",), ("113000",))
    # The same open form: one date-time from 1 January 10:00 on, where the time key alone
    # would have refused 08:30.
    assert match_date_time("20240101-", "1000-", ("20240102",), ("083000",))
    assert not match_value("TM", "1000-", ("083000",))


def test_sequence_matching() -> None:
    code = 0x00080100
    items = [{code: ("A",)}, {code: ("B",)}]
    key = Key(0x00081032, "SQ", items=(Key(code, "SH", "B"),))
    assert match_key(key, items)
    assert not match_key(Key(0x00081032, "SQ", items=(Key(code, "SH", "C"),)), items)
    # Zero-length sequence or an item of universal keys: universal.
    assert match_key(Key(0x00081032, "SQ"), [])
    assert match_key(Key(0x00081032, "SQ", items=(Key(code, "SH", ""),)), [])


def test_keys_are_anded() -> None:
    record = {0x00100010: ("DOE^JOHN",), 0x00100020: ("P1",)}
    assert match_record([Key(0x00100010, "PN", "DOE*"), Key(0x00100020, "LO", "P1")], record)
    assert not match_record([Key(0x00100010, "PN", "DOE*"), Key(0x00100020, "LO", "P2")], record)


def test_glob_escapes_brackets() -> None:
    assert wildcard_glob("A[1]*") == "A[[]1[]]*"


def test_levels_per_model() -> None:
    patient_name = 0x00100010
    assert level_of(patient_name, Model.PATIENT_ROOT) is Level.PATIENT
    assert level_of(patient_name, Model.STUDY_ROOT) is Level.STUDY
    assert level_of(0x00101010, Model.PATIENT_ROOT) is Level.STUDY  # Patient's Age
    assert level_of(0x00080060, Model.STUDY_ROOT) is Level.SERIES
    assert level_of(0x00280010, Model.STUDY_ROOT) is Level.IMAGE  # Rows


@pytest.mark.parametrize(
    ("vr", "query", "equal", "other"),
    [
        # Each query is written unlike the stored text: equal as numbers only.
        ("US", "016", "16", "17"),
        ("US", "8\\16", "16", "12"),  # any of several values
        ("SS", "-05", "-5", "5"),
        ("UL", "+4294967295", "4294967295", "0"),
        ("SV", "-09223372036854775808", "-9223372036854775808", "1"),
        ("FD", "1.5", "1.50", "1.25"),
        ("FD", "1e1", "10.0", "1.0"),
        ("FL", "0.300000011920928960", "0.30000001192092896", "0.3"),
    ],
)
def test_binary_numbers_single_value_matching(vr: str, query: str, equal: str, other: str) -> None:
    # PS3.4 C.2.2.2.1: a US/SS/UL/SL/UV/SV/FL/FD key matches by value; the SCP hands it over
    # as the decimal text of the binary value, and stored values are decimal text too.
    assert match_value(vr, query, (equal,))
    assert match_value(vr, query, (other, equal))
    assert not match_value(vr, query, (other,))
    assert not match_value(vr, query, ("not a number",))
    assert not match_value(vr, query, ())


@pytest.mark.parametrize(
    ("vr", "text", "expected"),
    [
        ("US", "65535", 65535),
        ("SS", "-32768", -32768),
        ("UV", "18446744073709551615", 2**64 - 1),
        ("FD", "-2e-3", -0.002),
        ("FL", ".5", 0.5),
    ],
)
def test_parse_number(vr: str, text: str, expected: float) -> None:
    assert parse_number(vr, text) == expected


@pytest.mark.parametrize(
    ("vr", "text"),
    [("US", "65536"), ("US", "-1"), ("US", "1.5"), ("US", "abc"), ("US", "1_000"),
     ("SS", "32768"), ("UL", "4294967296"), ("SL", "-2147483649"), ("FL", "1e39"),
     ("FD", "nan"), ("FD", "inf"), ("FD", "")],
)  # fmt: skip
def test_parse_number_refuses_what_the_vr_cannot_hold(vr: str, text: str) -> None:
    with pytest.raises(ValueError):
        parse_number(vr, text)


def test_wildcards_never_backtrack_exponentially() -> None:
    # Walk-through 4: `*A*A*A*A*A*A*A*B=*` against 64 letters took 10 s (each more `*A`
    # about 6 times longer), holding the whole server. Now linear: milliseconds.
    import time

    started = time.monotonic()
    assert not match_value("PN", "*A" * 30 + "*B=*", ("A" * 64,))
    assert not match_value("LO", "*A" * 30 + "*B", ("A" * 64,))
    assert match_value("LO", "*A" * 30 + "*", ("A" * 64,))
    assert time.monotonic() - started < 2  # exponential would be hours


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "", True), ("A*", "AB", True), ("*B", "AB", True), ("*A*", "BAB", True),
        ("A*B*C", "AxxBxxC", True), ("A*B*C", "AxxCxxB", False), ("?", "", False),
        ("a?c*", "abcd", True), ("*ab*ab", "abab", True), ("*ab*ab", "aba", False),
        ("**", "x", True), ("*?", "", False), ("*?", "z", True),
    ],
)  # fmt: skip
def test_wildcard_cases(pattern: str, value: str, expected: bool) -> None:
    assert match_value("LO", pattern, (value,)) is expected


def test_date_time_offsets_are_taken_into_account() -> None:
    # PS3.4 C.2.2.2.5.3: "The offset from Universal Coordinated Time, if present in the
    # Value of the Attribute, shall be taken into account". Offsets were stripped on both
    # sides: instances six hours apart matched the same window.
    plus_one = ("20240101120000+0100",)  # 11:00 UTC
    minus_five = ("20240101120000-0500",)  # 17:00 UTC
    window = "20240101103000+0000-20240101113000+0000"
    assert match_value("DT", window, plus_one)
    assert not match_value("DT", window, minus_five)
    assert match_value("DT", "20240101163000+0000-20240101173000+0000", minus_five)
    assert match_value("DT", "20240101110000+0000", plus_one)  # the same moment
    assert match_value("DT", "-20240101113000+0000", plus_one)
    assert not match_value("DT", "-20240101113000+0000", minus_five)
    # Without an offset on either side: compared as written.
    assert match_value("DT", "20240101113000-20240101123000", ("20240101120000",))
    assert match_value("DT", "20240101113000-20240101123000", plus_one)
    # A bound moved across a day and a short month keeps to real dates.
    assert match_value("DT", "202402+0100", ("20240131233000+0000",))
