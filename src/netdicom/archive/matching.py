"""C-FIND attribute matching (PS3.4 C.2.2.2) as pure functions over decoded values, and the
Query/Retrieve information models and levels (PS3.4 C.3, C.6) they apply to.

A stored attribute is a `Values` (a tuple of decoded strings, one per value; empty when the
attribute is absent or zero-length) or, for a sequence, an `Items` list of `Record`s. A query key
is a `Key`: the string value of the identifier element (a `\\`-joined string for multi-valued
requests), or for a sequence the keys of its single item.

Rules, and the leniencies this module documents:
- Universal (C.2.2.2.3): a zero-length value matches everything. A lone `*` (or `**`: `*`
  matches any run of characters, a zero-length value included, C.2.2.2.4) is universal for
  the wildcard VRs and, as documented leniency, for every other VR too (DCMTK and many SCUs
  send it for dates and numbers).
- Empty value: the two characters `""` match an absent or zero-length attribute (C.2.2.2.1).
- Single value (C.2.2.2.1): exact, case-sensitive, except PN (case-insensitive, declared in the
  conformance statement as the standard allows). Trailing/leading spaces are padding, not data.
  A multi-valued attribute matches when any of its values does.
  As leniency, IS and DS compare as numbers when both sides parse ("01" matches "1").
  TM and DT single values match at the precision given: `10` matches any time in 10:xx.
- Binary numbers (US SS UL SL UV SV FL FD): single value matching by numeric equality; the
  identifier's binary values arrive here as decimal text (`parse_number`). A key with several
  values matches when any of them equals any stored value, as a UID list does (leniency).
- List of UID (C.2.2.2.2): UI values separated by `\\`.
- Wild card (C.2.2.2.4): `*` any run (also empty), `?` one character, for AE CS LO LT PN SH ST
  UC UR UT.
- Range (C.2.2.2.5): `a-b`, `-b`, `a-` for DA, TM, DT; bounds inclusive; a bound given with
  less precision covers its whole period (`-2024` ... the upper bound 2024 means up to
  2024-12-31 for DT; `-10` for TM means up to 10:59:59.999999). A DT offset from UTC is taken
  into account when both the key and the value carry one (C.2.2.2.5.3); else both are compared
  as written. DA in the ACR-NEMA form `YYYY.MM.DD` is accepted.
- Combined date-time (C.2.2.2.5.1, only when extended negotiation agreed to it): a DA key and
  its TM key that are ranges of the same form are matched together as one date-time range;
  see `match_date_time`.
- Sequence (C.2.2.2.6): the key's single item holds keys; a stored sequence matches when one of
  its items matches every one of them; an empty item (or no item) is universal.
- PN (C.2.2.2.1, C.2.2.2.4): each value is split in component groups (alphabetic, ideographic,
  phonetic, separated by `=`); trailing `^` of each group and trailing empty groups are
  normalised away. A query with several groups is matched group by group (an empty query group
  matches anything). A query with one group is matched against the alphabetic group, or, when
  it holds non-ASCII characters (an ideographic or phonetic name typed by a user), against
  any group (documented leniency).
"""

from __future__ import annotations

import enum
import re
import sys
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Final, Union

from netdicom.core.records import frozen

# Wildcards apply to these VRs (PS3.4 C.2.2.2.4, current edition).
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"})
RANGE_VRS = frozenset({"DA", "TM", "DT"})
# VRs whose values are binary numbers (PS3.5 6.2): the inclusive range of each integer VR.
INTEGER_VRS: Final = {
    "US": (0, 0xFFFF),
    "SS": (-0x8000, 0x7FFF),
    "UL": (0, 0xFFFF_FFFF),
    "SL": (-0x8000_0000, 0x7FFF_FFFF),
    "UV": (0, 0xFFFF_FFFF_FFFF_FFFF),
    "SV": (-0x8000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF),
}
FLOAT_VRS: Final = {"FL": 3.4028234663852886e38, "FD": sys.float_info.max}  # largest finite
NUMBER_VRS: Final = frozenset(INTEGER_VRS) | frozenset(FLOAT_VRS)

Values = tuple[str, ...]
Record = Mapping[int, Union[Values, "Items"]]
Items = list[Record]


@frozen
class Key:
    """One matching key: its tag, VR and requested value (`items` for a sequence key)."""

    tag: int
    vr: str
    value: str = ""
    items: tuple[Key, ...] | None = None  # SQ only: the keys of the single item, if any

    @property
    def is_universal(self) -> bool:
        if self.vr == "SQ":
            return not self.items or all(k.is_universal for k in self.items)
        return only_stars(self.value)


# --- information models, levels and where each attribute lives (PS3.4 C.3, C.6) ----------

PATIENT_ROOT_FIND: Final = "1.2.840.10008.5.1.4.1.2.1.1"
STUDY_ROOT_FIND: Final = "1.2.840.10008.5.1.4.1.2.2.1"
FIND_SOP_CLASSES: Final = (PATIENT_ROOT_FIND, STUDY_ROOT_FIND)


class Model(enum.Enum):
    PATIENT_ROOT = "patient"
    STUDY_ROOT = "study"

    @property
    def find_sop_class(self) -> str:
        return PATIENT_ROOT_FIND if self is Model.PATIENT_ROOT else STUDY_ROOT_FIND

    @classmethod
    def for_sop_class(cls, uid: str) -> Model | None:
        return {PATIENT_ROOT_FIND: cls.PATIENT_ROOT, STUDY_ROOT_FIND: cls.STUDY_ROOT}.get(uid)

    @property
    def levels(self) -> tuple[Level, ...]:
        if self is Model.PATIENT_ROOT:
            return (Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE)
        return (Level.STUDY, Level.SERIES, Level.IMAGE)


class Level(enum.IntEnum):
    """Query/Retrieve Level (0008,0052) values, in hierarchy order."""

    PATIENT = 0
    STUDY = 1
    SERIES = 2
    IMAGE = 3

    @classmethod
    def parse(cls, text: str) -> Level | None:
        return cls.__members__.get(text.strip(" \x00").upper())


@frozen
class Column:
    """An attribute the index keeps in a column of its level's table."""

    level: Level
    name: str
    tag: int
    vr: str


# Unique and required keys of PS3.4 C.6.1.1 / C.6.2.1, plus common optional ones, as columns.
COLUMNS: Final = (
    Column(Level.PATIENT, "patient_id", 0x00100020, "LO"),
    Column(Level.PATIENT, "issuer", 0x00100021, "LO"),
    Column(Level.PATIENT, "patient_name", 0x00100010, "PN"),
    Column(Level.PATIENT, "birth_date", 0x00100030, "DA"),
    Column(Level.PATIENT, "birth_time", 0x00100032, "TM"),
    Column(Level.PATIENT, "sex", 0x00100040, "CS"),
    Column(Level.STUDY, "study_uid", 0x0020000D, "UI"),
    Column(Level.STUDY, "study_date", 0x00080020, "DA"),
    Column(Level.STUDY, "study_time", 0x00080030, "TM"),
    Column(Level.STUDY, "accession", 0x00080050, "SH"),
    Column(Level.STUDY, "study_id", 0x00200010, "SH"),
    Column(Level.STUDY, "referring", 0x00080090, "PN"),
    Column(Level.STUDY, "study_description", 0x00081030, "LO"),
    Column(Level.SERIES, "series_uid", 0x0020000E, "UI"),
    Column(Level.SERIES, "modality", 0x00080060, "CS"),
    Column(Level.SERIES, "series_number", 0x00200011, "IS"),
    Column(Level.SERIES, "series_description", 0x0008103E, "LO"),
    Column(Level.SERIES, "series_date", 0x00080021, "DA"),
    Column(Level.SERIES, "series_time", 0x00080031, "TM"),
    Column(Level.SERIES, "body_part", 0x00180015, "CS"),
    Column(Level.IMAGE, "sop_uid", 0x00080018, "UI"),
    Column(Level.IMAGE, "sop_class", 0x00080016, "UI"),
    Column(Level.IMAGE, "instance_number", 0x00200013, "IS"),
    Column(Level.IMAGE, "content_date", 0x00080023, "DA"),
    Column(Level.IMAGE, "content_time", 0x00080033, "TM"),
)
COLUMN_BY_TAG: Final = {c.tag: c for c in COLUMNS}
SPECIFIC_CHARACTER_SET: Final = 0x00080005
QUERY_RETRIEVE_LEVEL: Final = 0x00080052
RETRIEVE_AE_TITLE: Final = 0x00080054

UNIQUE_KEYS: Final = {
    Level.PATIENT: 0x00100020,
    Level.STUDY: 0x0020000D,
    Level.SERIES: 0x0020000E,
    Level.IMAGE: 0x00080018,
}


@frozen
class Computed:
    """An attribute the SCP computes from the index (PS3.4 C.3.4, C.3.5)."""

    level: Level
    tag: int
    vr: str
    keyword: str


COMPUTED: Final = (
    Computed(Level.PATIENT, 0x00201200, "IS", "NumberOfPatientRelatedStudies"),
    Computed(Level.PATIENT, 0x00201202, "IS", "NumberOfPatientRelatedSeries"),
    Computed(Level.PATIENT, 0x00201204, "IS", "NumberOfPatientRelatedInstances"),
    Computed(Level.STUDY, 0x00201206, "IS", "NumberOfStudyRelatedSeries"),
    Computed(Level.STUDY, 0x00201208, "IS", "NumberOfStudyRelatedInstances"),
    Computed(Level.STUDY, 0x00080061, "CS", "ModalitiesInStudy"),
    Computed(Level.STUDY, 0x00080062, "UI", "SOPClassesInStudy"),
    Computed(Level.SERIES, 0x00201209, "IS", "NumberOfSeriesRelatedInstances"),
)
COMPUTED_BY_TAG: Final = {c.tag: c for c in COMPUTED}

# Date and time keys matched together under combined date-time matching (PS3.4 C.2.2.2.5.1):
# Study, Series, Acquisition and Content Date/Time, and Patient's Birth Date/Time.
DATE_TIME_PAIRS: Final = (
    (0x00080020, 0x00080030),
    (0x00080021, 0x00080031),
    (0x00080022, 0x00080032),
    (0x00080023, 0x00080033),
    (0x00100030, 0x00100032),
)

# Patient Study module (PS3.3 C.7.2.2): in group 0010 but about the patient at the time of
# the study, so study level.
_PATIENT_STUDY: Final = frozenset(
    {0x00101010, 0x00101020, 0x00101021, 0x00101022, 0x00101023, 0x00101024, 0x00101030}
    | {0x00102180, 0x001021A0, 0x001021B0, 0x001021C0, 0x001021D0, 0x00102203}
)
# General Study, Patient Study (outside group 0010) and study-level Q/R attributes.
_STUDY: Final = frozenset(
    {0x00080020, 0x00080030, 0x00080050, 0x00080051, 0x00080056, 0x00080090, 0x00080096}
    | {0x00081030, 0x00081032, 0x00081048, 0x00081049, 0x00081060, 0x00081062, 0x00081080}
    | {0x00081084, 0x00081110, 0x0020000D, 0x00200010, 0x00201070, 0x00321032, 0x00321033}
    | {0x00321060, 0x00321064, 0x00380010, 0x00380500}
)
# General Series, General Equipment, Frame of Reference and series-level Q/R attributes.
_SERIES: Final = frozenset(
    {0x00080021, 0x00080031, 0x00080060, 0x00080070, 0x00080080, 0x00080081, 0x0008103E}
    | {0x00081010, 0x00081040, 0x00081050, 0x00081052, 0x00081070, 0x00081072, 0x00081090}
    | {0x00081111, 0x00180015, 0x00181000, 0x00181020, 0x00181030, 0x00185100, 0x0020000E}
    | {0x00200011, 0x00200052, 0x00200060, 0x00201040, 0x00400244, 0x00400245, 0x00400253}
    | {0x00400254, 0x00400260, 0x00400275, 0x00400280}
)


def is_patient_attribute(tag: int) -> bool:
    """An attribute of the patient (Patient module, group 0010), not of the patient at the
    time of one study (Patient Study module): one value for all the patient's studies."""
    return tag >> 16 == 0x0010 and tag not in _PATIENT_STUDY


def level_of(tag: int, model: Model) -> Level:
    """The level an attribute belongs to in `model` (in the study root model the patient's
    attributes are study attributes, PS3.4 C.6.2)."""
    column = COLUMN_BY_TAG.get(tag)
    computed = COMPUTED_BY_TAG.get(tag)
    if column is not None:
        level = column.level
    elif computed is not None:
        level = computed.level
    elif tag in _PATIENT_STUDY or tag in _STUDY:
        level = Level.STUDY
    elif tag >> 16 == 0x0010:
        level = Level.PATIENT
    elif tag in _SERIES:
        level = Level.SERIES
    else:
        level = Level.IMAGE
    if model is Model.STUDY_ROOT and level is Level.PATIENT:
        return Level.STUDY
    return level


# --- the entry points -----------------------------------------------------------------------


def match_record(keys: Sequence[Key], record: Record) -> bool:
    """True when `record` matches every key (C.2.2.2: keys are ANDed)."""
    return all(match_key(key, record.get(key.tag, ())) for key in keys)


def match_key(key: Key, stored: Values | Items) -> bool:
    """Match one key against one stored attribute (absent attributes are `()`)."""
    if key.vr == "SQ":
        return match_sequence(key, stored)
    values: Values = stored if isinstance(stored, tuple) else ()
    return match_value(key.vr, key.value, values)


def only_stars(query: str) -> bool:
    """A key that matches every value, an empty or absent one too: zero-length, or nothing
    but `*` (`**` left out the empty and absent values, where dcmqrscp matches them:
    walkthrough 7b)."""
    return query.strip("*") == ""


def match_value(vr: str, query: str, values: Values) -> bool:
    """Match a string key of `vr` against the values of a stored attribute."""
    if only_stars(query):
        return True
    if query == '""':
        return not any(v.strip(" \x00") for v in values)
    if vr == "UI":
        wanted = {uid.strip(" \x00") for uid in query.split("\\")}
        return any(v.strip(" \x00") in wanted for v in values)
    if "\\" in query and vr not in NUMBER_VRS:
        # Several values: any of them, as for a UID list and the number keys (leniency:
        # PS3.4 C.2.2.2 defines lists for UIDs; `ModalitiesInStudy=CT\MR` matched nothing,
        # walkthrough 7b; Orthanc reads it so too). An empty one among them adds nothing.
        parts = [part for part in query.split("\\") if part.strip(" ")]
        return not parts or any(match_value(vr, part, values) for part in parts)
    if vr == "DT":
        return any(_match_date_time_value(query, v) for v in values)
    if vr in RANGE_VRS and _is_range(vr, query):
        low, high = parse_range(vr, query)
        return any(_in_range(vr, v, low, high) for v in values)
    if vr == "PN":
        return any(match_person_name(query, v) for v in values)
    if vr in NUMBER_VRS:
        return _match_numbers(vr, query, values)
    if vr in WILDCARD_VRS and ("*" in query or "?" in query):
        pattern = wildcard_regex(query.strip(" "), ignore_case=False)
        return any(pattern.fullmatch(v.strip(" ")) is not None for v in values)
    return any(_single(vr, query, v) for v in values)


def match_sequence(key: Key, stored: Values | Items) -> bool:
    """Sequence matching (C.2.2.2.6): one stored item must match all keys of the query item."""
    if key.is_universal:
        return True
    assert key.items is not None
    items: Items = stored if isinstance(stored, list) else []
    return any(match_record(key.items, item) for item in items)


# --- single values --------------------------------------------------------------------------


def _single(vr: str, query: str, value: str) -> bool:
    q = query.strip(" \x00")
    v = value.strip(" \x00")
    if vr in ("IS", "DS"):
        try:
            return Decimal(q) == Decimal(v)
        except InvalidOperation:
            return q == v
    if vr == "DA":
        return normalise_date(q) == normalise_date(v)
    if vr in ("TM", "DT"):
        low, high = _bounds(vr, q)
        return _in_range(vr, v, low, high)
    return q == v


# --- binary numbers -------------------------------------------------------------------------

_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def parse_number(vr: str, text: str) -> int | float:
    """One value of a binary number VR written as text (`16`, `-2.5e-3`); ValueError when it is
    not a number of that VR (a float for an integer VR, NaN, infinity) or out of its range."""
    t = text.strip(" \x00")
    if vr in INTEGER_VRS:
        low, high = INTEGER_VRS[vr]
        if not _INTEGER.fullmatch(t) or not low <= int(t) <= high:
            raise ValueError(t)
        return int(t)
    if not _DECIMAL.fullmatch(t) or abs(float(t)) > FLOAT_VRS[vr]:
        raise ValueError(t)
    return float(t)


def _number_or_none(vr: str, text: str) -> int | float | None:
    try:
        return parse_number(vr, text)
    except ValueError:
        return None


def _match_numbers(vr: str, query: str, values: Values) -> bool:
    """Single value matching of binary numbers (C.2.2.2.1): equal as numbers, so that `16`
    matches a stored `16` and `1.5` a stored `1.50`. A stored value that is not a number of
    the VR matches nothing; a query that is not one falls back to comparing text."""
    wanted = [_number_or_none(vr, q) for q in query.split("\\")]
    if any(w is None for w in wanted):
        return any(_single(vr, query, v) for v in values)
    stored = (_number_or_none(vr, v) for v in values)
    return any(s is not None and s in wanted for s in stored)


# --- person names ---------------------------------------------------------------------------


def normalise_person_name(value: str) -> str:
    """Upper-case, trailing `^` and spaces of each group removed, trailing empty groups gone."""
    groups = [g.rstrip(" ").rstrip("^").rstrip(" ") for g in fold_case(value).split("=")]
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups)


def fold_case(text: str) -> str:
    """Upper case, one character for one: `?` matches one character (C.2.2.2.4), and
    str.upper() turns some into two ("ß" into "SS": `Gr??e` would no longer match "Größe").
    Such characters are left as they are."""
    if text.isascii():
        return text.upper()
    return "".join(_fold_char(c) for c in text)


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    upper = char.upper()
    return upper if len(upper) == 1 else char


def match_person_name(query: str, value: str) -> bool:
    """PN single value or wildcard matching, case-insensitive, per component group."""
    q_groups = normalise_person_name(query).split("=")
    v_groups = normalise_person_name(value).split("=")
    if len(q_groups) == 1:
        if q_groups[0].isascii():
            return _match_pn_group(q_groups[0], v_groups[0])
        return any(_match_pn_group(q_groups[0], g) for g in v_groups)
    for i, q in enumerate(q_groups):
        if only_stars(q):
            continue
        stored = v_groups[i] if i < len(v_groups) else ""
        if not _match_pn_group(q, stored):
            return False
    return True


def _match_pn_group(query: str, value: str) -> bool:
    if only_stars(query):
        return True
    if "*" in query or "?" in query:
        return wildcard_regex(query, ignore_case=False).fullmatch(value) is not None
    return query == value


@lru_cache(maxsize=256)
def wildcard_regex(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """`*` and `?` as a regular expression for fullmatch(); every other character literal.

    A plain translation (`*` to `.*`) backtracks exponentially: `*A*A*A*A*A*A*A*B` against 64
    letters took 10 s, holding the whole server (walk-through 4). Here each run between two
    stars is taken at its first occurrence, in an atomic group that never gives it back (as
    fnmatch.translate does): the first occurrence is always the best, since it leaves the most
    of the value for the rest. Time stays linear in the value for each run."""

    def literal(run: str) -> str:
        return "".join("." if c == "?" else re.escape(c) for c in run)

    head, *rest = pattern.split("*")
    if not rest:
        body = literal(head)
    else:
        *middle, tail = rest
        runs = "".join(f"(?>.*?{literal(run)})" for run in middle if run)
        body = f"{literal(head)}{runs}.*{literal(tail)}"
    return re.compile(body, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def wildcard_glob(pattern: str) -> str:
    """The same pattern for SQLite GLOB (`[` escaped as a bracket class)."""
    return "".join("[[]" if c == "[" else "[]]" if c == "]" else c for c in pattern)


# --- dates and times ------------------------------------------------------------------------


def normalise_date(value: str) -> str:
    """`YYYYMMDD` from `YYYYMMDD` or the ACR-NEMA `YYYY.MM.DD`."""
    return value.strip(" \x00").replace(".", "")


# A DT value may end in a UTC offset (&ZZXX) whose '-' is not a range separator; the regular
# expression's backtracking tells them apart ("2024-2025" is a range, "-2023" an upper bound).
_DT_VALUE = r"\d+(?:\.\d*)?(?:[+-]\d{4})?"
_DT_RANGE = re.compile(rf"({_DT_VALUE})?-({_DT_VALUE})?")
_DT_OFFSET = re.compile(r"[+-]\d{4}$")


def _strip_offset(vr: str, text: str) -> str:
    if vr == "DT":
        return _DT_OFFSET.sub("", text.strip())
    return text


def _is_range(vr: str, text: str) -> bool:
    if vr == "DT":
        return _DT_RANGE.fullmatch(text.strip(" \x00")) is not None
    return "-" in text


def parse_range(vr: str, query: str) -> tuple[str | None, str | None]:
    """The inclusive bounds of a range key as comparable strings (None: open)."""
    text = query.strip(" \x00")
    if vr == "DT":
        found = _DT_RANGE.fullmatch(text)
        low_text, high_text = (
            (found.group(1) or "", found.group(2) or "") if found else (text, text)
        )
    else:
        low_text, _, high_text = text.partition("-")
    low = _bounds(vr, low_text)[0] if low_text else None
    high = _bounds(vr, high_text)[1] if high_text else None
    return low, high


def _bounds(vr: str, text: str) -> tuple[str, str]:
    """Lowest and highest full-precision values a partial DA/TM/DT value stands for."""
    t = _strip_offset(vr, text.strip(" \x00"))
    if vr == "DA":
        d = normalise_date(t)
        return d, d
    if vr == "TM":
        t = t.replace(":", "")
        return _pad_time(t, "0"), _pad_time(t, "9")
    # DT: YYYYMMDDHHMMSS.FFFFFF with any trailing part omitted.
    date, time = t[:8], t[8:]
    low_date = date + "00010101"[len(date) :]
    high_date = date + "99991231"[len(date) :] if len(date) < 8 else date
    if len(date) == 6:
        high_date = date + "31"
    return low_date + _pad_time(time, "0"), high_date + _pad_time(time, "9")


def _pad_time(t: str, fill: str) -> str:
    whole, _, frac = t.partition(".")
    if fill == "9":
        top = "235959"
        whole = whole + top[len(whole) :]
    else:
        whole = whole + "000000"[len(whole) :]
    return f"{whole[:6]}.{(frac + fill * 6)[:6]}"


def _match_date_time_value(query: str, value: str) -> bool:
    """DT single value or range matching (C.2.2.2.1, C.2.2.2.5), UTC offsets taken into
    account (C.2.2.2.5.3): where a query bound and the value both carry one (&ZZXX), both are
    compared in UTC; where either has none, they are compared as written (a value without an
    offset is in the local time of whoever wrote it, which we cannot know)."""
    q = query.strip(" \x00")
    v = value.strip(" \x00")
    if not v:
        return False
    found = _DT_RANGE.fullmatch(q)
    low_text, high_text = (found.group(1) or "", found.group(2) or "") if found else (q, q)
    v_low, v_high = _bounds("DT", v)
    # The value's latest moment must not be before the low bound, its earliest not after
    # the high one.
    if low_text:
        low, latest = _comparable(_bounds("DT", low_text)[0], low_text, v_high, v)
        if latest < low:
            return False
    if high_text:
        high, earliest = _comparable(_bounds("DT", high_text)[1], high_text, v_low, v)
        if earliest > high:
            return False
    return True


def _comparable(bound: str, bound_text: str, moment: str, value: str) -> tuple[str, str]:
    """A query bound and a moment of the value, both moved to UTC when both carry an offset."""
    offset, value_offset = _dt_offset(bound_text), _dt_offset(value)
    if offset and value_offset:
        return _utc(bound, offset), _utc(moment, value_offset)
    return bound, moment


def _dt_offset(text: str) -> str | None:
    found = _DT_OFFSET.search(text.strip())
    return found.group(0) if found else None


def _utc(bound: str, offset: str) -> str:
    """A full-precision DT bound (`YYYYMMDDHHMMSS.FFFFFF`, as _bounds gives) written in the
    time zone `offset` (&ZZXX), moved to UTC."""
    import calendar
    from datetime import datetime, timedelta

    try:
        year, month = int(bound[:4]), int(bound[4:6])
        # _bounds pads a month's upper bound with day 31, whatever the month.
        day = min(int(bound[6:8]), calendar.monthrange(year, month)[1])
        moment = datetime(year, month, day, int(bound[8:10]), int(bound[10:12]),
                          int(bound[12:14]), int(bound[15:21] or 0))  # fmt: skip
        shift = timedelta(hours=int(offset[1:3]), minutes=int(offset[3:5]))
        moment = moment - shift if offset[0] == "+" else moment + shift
    except (ValueError, OverflowError):
        return bound  # not a date we can move (year 1, a month 13): as written
    return moment.strftime("%Y%m%d%H%M%S") + f".{moment.microsecond:06d}"


def _in_range(vr: str, value: str, low: str | None, high: str | None) -> bool:
    v = value.strip(" \x00")
    if not v:
        return False
    if vr == "DA":
        d = normalise_date(v)
        return (low is None or d >= low) and (high is None or d <= high)
    v_low, v_high = _bounds(vr, v)
    return (low is None or v_high >= low) and (high is None or v_low <= high)


def match_date_time(date_query: str, time_query: str, date: Values, time: Values) -> bool:
    """Combined date-time range matching (PS3.4 C.2.2.2.5.1): `StudyDate=20240101-20240102`
    with `StudyTime=2200-0600` means from 2024-01-01 22:00 to 2024-01-02 06:00.

    Used only when the SCU asked for it in extended negotiation and we agreed, and only for
    two keys that "specify the same form of Range Matching" (C.2.2.2.5.1): both `a-b`, both
    `a-` or both `-b`. Any other pair (a range with a single value, a universal key) is
    matched key by key: `StudyDate=20240101-20240131` with `StudyTime=1015` means 10:15 on
    any day of January, not the interval from 1 January 10:15 to 31 January 10:15."""
    dq = date_query.strip(" \x00")
    tq = time_query.strip(" \x00")
    form = _range_form(dq)
    if form is None or form != _range_form(tq):
        return match_value("DA", dq, date) and match_value("TM", tq, time)
    d_low, sep_d, d_high = dq.partition("-")
    t_low, sep_t, t_high = tq.partition("-")
    if not sep_d:
        d_high = d_low
    if not sep_t:
        t_high = t_low
    low = _combine(d_low, t_low, high=False)
    high = _combine(d_high, t_high, high=True)
    stored_date = date[0] if date else ""
    stored_time = time[0] if time else ""
    if not stored_date:
        return False
    v_low = _combine(stored_date, stored_time, high=False) or ""
    v_high = _combine(stored_date, stored_time, high=True) or ""
    return (low is None or v_high >= low) and (high is None or v_low <= high)


def _range_form(query: str) -> str | None:
    """Which form of range matching a DA or TM key is (C.2.2.2.5): "a-b", "a-" or "-b";
    None for a single value or a universal key."""
    if query in ("", "*") or "-" not in query:
        return None
    low, _, high = query.partition("-")
    return "a-b" if low and high else "a-" if low else "-b"


def _combine(date: str, time: str, *, high: bool) -> str | None:
    if not date:
        return None
    d = normalise_date(date)
    pad = _pad_time(time.replace(":", ""), "9" if high else "0")
    return d + pad
