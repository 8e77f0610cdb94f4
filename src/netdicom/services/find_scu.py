"""Query/Retrieve C-FIND SCU (PS3.4 C.4.1): build an identifier, send it, collect the matches.

Each pending response's identifier is decoded with its own Specific Character Set (with the
archive's documented fallback when it declares none). `max_results` (or a `cancel` event:
Ctrl-C) sends one C-CANCEL-RQ, then reads until the final response (PS3.7 9.3.2.3), for at
most a few seconds; matches that arrive after the cancel are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from netdicom.archive.matching import (
    COMPUTED_BY_TAG,
    DATE_TIME_PAIRS,
    INTEGER_VRS,
    NUMBER_VRS,
    Level,
    Model,
    level_of,
    parse_number,
)
from netdicom.archive.rebuild import apply_fallback_charset
from netdicom.core import uids
from netdicom.core.acse import ProposedContext
from netdicom.core.dimse import CCancelRQ, CFindRQ, CFindRSP, status
from netdicom.core.errors import NetDicomError, RemoteProtocolError
from netdicom.core.printable import quoted
from netdicom.core.records import frozen
from netdicom.services.find_scp import check_identifier, decode_identifier, encode_identifier
from netdicom.services.responses import peer_comment
from netdicom.services.session import (
    CancellableReceiver,
    command_name,
    receive_response,
    require_context,
)
from netdicom.transport.association import Association


def find_contexts(model: Model) -> tuple[ProposedContext, ...]:
    return (ProposedContext(model.find_sop_class, (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE)),)


# Return keys asked for when the user gives none of their own (keywords, by level).
DEFAULT_KEYS: Final[dict[Level, tuple[str, ...]]] = {
    Level.PATIENT: (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "NumberOfPatientRelatedStudies",
    ),
    Level.STUDY: (
        "PatientName",
        "PatientID",
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ModalitiesInStudy",
        "StudyDescription",
        "NumberOfStudyRelatedInstances",
        "StudyInstanceUID",
    ),
    Level.SERIES: (
        "Modality",
        "SeriesNumber",
        "SeriesDescription",
        "NumberOfSeriesRelatedInstances",
        "SeriesInstanceUID",
    ),
    Level.IMAGE: ("InstanceNumber", "SOPClassUID", "SOPInstanceUID"),
}


class BadKey(NetDicomError):
    """A KEY=VALUE argument we cannot turn into an identifier element."""


class ReversedTime(BadKey):
    """A time range that ends before it starts: nothing, unless combined date-time matching
    (PS3.4 C.2.2.2.5.1) reads it with a date range as a night (`2200-0200`)."""


# SOP Class Extended Negotiation of C-FIND (PS3.4 Table C.5-1): byte 1 relational queries
# (not asked), byte 2 combined date and time matching.
COMBINED_DATE_TIME: Final = b"\x00\x01"


@frozen
class KeyArg:
    tag: int
    keyword: str
    value: str
    # A time range across midnight with its date range (parse_keys(combined=True)): asked
    # with combined date-time matching, where it is a night.
    night: bool = False


_TAG = re.compile(r"\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?")


# A date or time matching key: one value, or a range with either end left open (PS3.4
# C.2.2.2.5). Wildcards do not apply to DA and TM (C.2.2.2.4): `StudyDate=2024*` or a range of
# years would match nothing, or not what was meant, so they are refused before sending.
_DATE = r"\d{8}"
_TIME = r"\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?"
# DT: YYYY, then as much of MMDDHHMMSS.FFFFFF as wanted, and a UTC offset (PS3.5 Table 6.2-1;
# `AcquisitionDateTime=2024*` was sent and matched nothing, without a word).
_DATE_TIME = r"\d{4}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\d{2}(?:\.\d{1,6})?)?)?)?)?)?(?:[+-]\d{4})?"
_MATCHABLE: Final = {
    "DA": (re.compile(rf"{_DATE}|{_DATE}-(?:{_DATE})?|-{_DATE}"), "YYYYMMDD", ""),
    "TM": (
        re.compile(rf"{_TIME}|{_TIME}-(?:{_TIME})?|-{_TIME}"),
        "HHMMSS",
        "; a time may stop after HH or HHMM, or go on to .FFFFFF",
    ),
    "DT": (
        re.compile(rf"{_DATE_TIME}|{_DATE_TIME}-(?:{_DATE_TIME})?|-{_DATE_TIME}"),
        "YYYYMMDDHHMMSS",
        "; a date-time may stop after YYYY or any later part, and carry a UTC offset +HHMM",
    ),
}


def _check_date_time(keyword: str, vr: str, value: str) -> None:
    form = _MATCHABLE.get(vr)
    if form is None or value in ("", "*", '""'):
        return  # universal, or `""`: the attribute empty or absent (as serve and dcmtk match)
    text = value.strip(" ")
    if form[0].fullmatch(text):
        problem = _calendar_problem(vr, text)
        if problem:
            error = ReversedTime if vr == "TM" and "the range ends" in problem else BadKey
            raise error(f"{keyword}={quoted(value)}: {problem}; such a key matches nothing")
        return
    _, one, more = form
    raise BadKey(
        f"{keyword}={quoted(value)}: a {vr} key is one value or a range ({one}, {one}-{one}, "
        f"{one}- or -{one}{more}), without wildcards (PS3.4 C.2.2.2.5)"
    )


def _calendar_problem(vr: str, text: str) -> str | None:
    """What makes a well-formed DA/TM/DT key impossible: a day or time that does not exist
    (`20240231`, `25`), or a range that ends before it starts. Such a key was sent and matched
    nothing, without a word. A DT value with a UTC offset is left to the peer (a `-` may then
    be a sign or a range)."""
    if vr == "DT" and ("+" in text or text.count("-") > 1):
        return _offset_problem(text)
    start, dash, end = text.partition("-")
    if vr == "DT" and start and len(end) == 4 and _offset_problem(f"-{end}") is None:
        # `20240101120000-0500`: a UTC offset as much as a range of years; only the value
        # before it is checked.
        return _calendar_problem(vr, start)
    for part in (start, end):
        date, clock = (
            (part, "") if vr == "DA" else ("", part) if vr == "TM" else (part[:8], part[8:])
        )
        if date and not _real_date(date):
            return f"{date} is no day of the calendar"
        if clock and not _real_time(clock):
            return f"{clock} is no time of day (HH 00-23, MM 00-59, SS 00-60)"
    if dash and start and end and _lowest(vr, start) > _highest(vr, end):
        return f"the range ends ({end}) before it starts ({start})"
    return None


def _offset_problem(text: str) -> str | None:
    """A DT UTC offset outside -1200..+1400, or with minutes past 59 (PS3.5 Table 6.2-1).
    The rest of such a value is left to the peer (a `-` may be a sign or a range)."""
    for sign, hours, minutes in re.findall(r"([+-])(\d{2})(\d{2})(?=$|-)", text):
        value = int(hours) * 60 + int(minutes)
        if (
            int(minutes) > 59
            or (sign == "+" and value > 14 * 60)
            or (sign == "-" and value > 12 * 60)
        ):
            return f"{sign}{hours}{minutes} is no UTC offset (-1200 to +1400)"
    return None


def _real_date(date: str) -> bool:
    """YYYY, YYYYMM or YYYYMMDD (DT may stop early) naming a year, month or day that exists."""
    import datetime

    month, day = int(date[4:6] or 1), int(date[6:8] or 1)
    try:
        datetime.date(int(date[:4]) or 1, month, day)
    except ValueError:
        return False
    return True


def _real_time(clock: str) -> bool:
    """HH, HHMM or HHMMSS(.F...) within a day; SS may be 60, a leap second (PS3.5 Table 6.2-1)."""
    hours, minutes, seconds = int(clock[0:2]), int(clock[2:4] or 0), int(clock[4:6] or 0)
    return hours <= 23 and minutes <= 59 and seconds <= 60


# The first and last instant of a DA/TM/DT value that stops early (`2024` is a year), laid out
# so that two ends compare as text.
_SPAN: Final = {
    "DA": ("", ""),
    "TM": ("000000.000000", "235960.999999"),
    "DT": ("00000101000000.000000", "99991231235960.999999"),
}


def _lowest(vr: str, end: str) -> str:
    return end + _SPAN[vr][0][len(end) :]


def _highest(vr: str, end: str) -> str:
    return end + _SPAN[vr][1][len(end) :]


def _numbers(keyword: str, vr: str, value: str) -> list[int | float] | None:
    """A key of a binary number VR (US, SS, UL, SL, UV, SV, FL, FD) as the numbers the element
    holds: such an element carries no text, so wildcards and ranges cannot apply (PS3.4
    C.2.2.2.4, C.2.2.2.5) and only single values (C.2.2.2.1) can be asked for. '' and a lone
    `*` are universal (None, zero length); several values are separated by `\\`."""
    if value in ("", "*"):
        return None
    try:
        return [parse_number(vr, part) for part in value.split("\\")]
    except ValueError:
        # "an FD", "an SS", but "a US": the article goes with the letter's spoken name.
        article = "an" if vr[0] in "FS" else "a"
        raise BadKey(
            f"{keyword}={quoted(value)}: {article} {vr} key is {_number_form(vr)}"
        ) from None


def _number_form(vr: str) -> str:
    several = ", several separated by \\ (PS3.4 C.2.2.2.1)"
    if vr in INTEGER_VRS:
        low, high = INTEGER_VRS[vr]
        return f"an integer from {low} to {high}{several}"
    return f"a decimal number such as 1.5 or -2e-3{several}"


def parse_keys(texts: Sequence[str], *, combined: bool = False) -> list[KeyArg]:
    """Each KEY=VALUE of the command line, one per attribute. An attribute given twice keeps
    its value when the other is `KEY=` (asking to show it: a matching key returns its value
    anyway); with two values it is a BadKey. The later one silently replaced the first:
    `PatientName=DOE* PatientName=` matched everyone (walkthrough 6b, 6d).

    `combined`: a time range that ends before it starts is taken when its date key holds a
    range: with combined date-time matching it is a night (`StudyDate=20240101-20240102
    StudyTime=2200-0200`), marked `night` for the caller to negotiate that."""
    keys: dict[int, KeyArg] = {}
    given: dict[int, str] = {}
    night: dict[int, ReversedTime] = {}
    for text in texts:
        try:
            key = parse_key(text)
        except ReversedTime as exc:
            if not combined:
                raise
            key = replace(parse_key(text, check_dates=False), night=True)
            night[key.tag] = exc
        earlier = keys.get(key.tag)
        if earlier is None or not earlier.value:
            keys[key.tag], given[key.tag] = key, text
        elif key.value and key.value != earlier.value:
            raise BadKey(
                f"{key.keyword} is given twice ({quoted(given[key.tag])} and {quoted(text)}): "
                "one value per attribute; several values go in one, separated by \\"
            )
    date_of = {time: date for date, time in DATE_TIME_PAIRS}
    for tag, error in night.items():
        date = keys.get(date_of.get(tag, -1))
        if date is None or "-" not in date.value:
            raise error
    return list(keys.values())


def parse_key(text: str, *, check_dates: bool = True) -> KeyArg:
    """`PatientName=DOE*`, `0010,0010=DOE*`, `(0010,0010)=`, `00100010=`."""
    from pydicom.datadict import tag_for_keyword

    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep:
        raise BadKey(f"{quoted(text)} is not KEY=VALUE (use KEY= to ask for a return key)")
    found = _TAG.fullmatch(name)
    if found:
        tag = int(found.group(1) + found.group(2), 16)
        keyword = _keyword(tag)
    else:
        number = tag_for_keyword(name)
        if number is None:
            raise BadKey(
                f"{quoted(name)} is not a DICOM keyword or a tag (e.g. PatientName or 0010,0010)"
            )
        tag, keyword = int(number), name
    vr = _dictionary_vr(tag)
    if check_dates:
        _check_date_time(keyword, vr, value)
    if vr == "UI" and ("*" in value or "?" in value):
        # Wild cards do not apply to UIDs (PS3.4 C.2.2.2.4): an SCP matches the text as it
        # is, and `1.2.840.*` found nothing, without a word.
        raise BadKey(
            f"{keyword}={quoted(value)}: a UID key is one UID or a list of UIDs separated by "
            "\\, never a wildcard (PS3.4 C.2.2.2.4): give whole UIDs (in a find, KEY= with "
            "no value asks for it)"
        )
    if vr in NUMBER_VRS:
        _numbers(keyword, _number_vr(tag, value), value)
    return KeyArg(tag, keyword, value)


def _keyword(tag: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(tag) or f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _number_vr(tag: int, value: str) -> str:
    """The VR a number key is sent in: of "US or SS" (Smallest Image Pixel Value and the
    like, signed when Pixel Representation is 1), the one its values fit; a negative value
    was refused as "a US key is an integer from 0 to 65535"."""
    from pydicom.datadict import dictionary_VR

    try:
        choices = str(dictionary_VR(tag)).split(" or ")
    except KeyError:
        return _dictionary_vr(tag)
    for vr in choices:
        try:
            _numbers("", vr, value)
        except BadKey:
            continue
        return vr
    return choices[0]  # none fits: the first one's message says why


def _dictionary_vr(tag: int) -> str:
    """The VR of `tag` in the data dictionary (the first of "US or SS"); a tag it does not
    know is LO when private, else UN."""
    from pydicom.datadict import dictionary_VR

    try:
        return str(dictionary_VR(tag)).split(" or ")[0]
    except KeyError:
        return "LO" if (tag >> 16) % 2 else "UN"


def wanted_keys(
    level: Level, model: Model, keys: Sequence[KeyArg], *, defaults: bool = True
) -> dict[int, str]:
    """Tag -> requested value, in display order: the level's default return keys (those of the
    level and above in `model`), then the user's keys (a user key replaces a default's value)."""
    from pydicom.datadict import tag_for_keyword

    wanted: dict[int, str] = {}
    if defaults:
        for keyword in DEFAULT_KEYS[level]:
            tag = int(tag_for_keyword(keyword) or 0)
            if level_of(tag, model) <= level:
                wanted[tag] = ""
    for key in keys:
        wanted[key.tag] = key.value
    return wanted


def build_identifier(level: Level, wanted: Mapping[int, str]) -> Any:
    """The C-FIND identifier: Query/Retrieve Level, the wanted keys, and Specific Character
    Set when a value is not ASCII (ISO_IR 192).

    Values are not checked against their VR's syntax by pydicom (which would warn on
    `Modality=C*`: wildcards and ranges are matching syntax, not stored values); `parse_key`
    checks dates, times and numbers, the rest is for the peer to match. A binary number VR's
    value is converted to its numbers (BadKey when it is not one)."""
    from pydicom import config
    from pydicom.dataelem import DataElement
    from pydicom.dataset import Dataset

    ds = Dataset()
    charset = wanted.get(_CHARSET_TAG, "").strip(" ")
    if charset:
        # Given by the user: the identifier is written in it, so each value must fit (pydicom
        # put '?' for what did not, a wildcard: `PatientName=Иванов*` in ISO_IR 100 matched
        # every name of six letters, walkthrough 6b).
        terms = [term.strip(" ") for term in charset.split("\\")]
        _check_encodable(terms, wanted)
        ds.SpecificCharacterSet = terms if len(terms) > 1 else terms[0]
    elif any(not v.isascii() for v in wanted.values()):
        ds.SpecificCharacterSet = "ISO_IR 192"
    # Otherwise absent (the default repertoire): it is not a return key, and must never be
    # zero-length (PS3.4 C.2.2.2; `SpecificCharacterSet=` only shows the responses' set). The
    # SCP names the set of its responses when they need one.
    ds.QueryRetrieveLevel = level.name
    for tag, value in wanted.items():
        if tag == _CHARSET_TAG:
            continue
        computed = COMPUTED_BY_TAG.get(tag)
        vr = computed.vr if computed else _dictionary_vr(tag)
        element_value: object
        if vr == "SQ":
            if value:
                raise BadKey(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is a sequence: use KEY=")
            element_value = []
        elif vr in NUMBER_VRS:
            vr = _number_vr(tag, value)
            numbers = _numbers(_keyword(tag), vr, value)
            element_value = numbers[0] if numbers and len(numbers) == 1 else numbers
        elif vr in ("IS", "DS") and value == '""':
            # Empty value matching (PS3.4 C.2.2.2.1) sends the two quotes as they are; pydicom
            # would convert them to a number and fail. Written raw.
            from pydicom.dataelem import RawDataElement
            from pydicom.tag import Tag

            ds[tag] = RawDataElement(Tag(tag), vr, 2, b'""', 0, False, True)
            continue
        elif vr == "AT" and value:
            # As tags are written here and in the README: 0018,1063 or (0018,1063).
            element_value = [v.strip("() ").replace(",", "") for v in value.split("\\")]
        elif vr == "UI" or ("\\" in value and vr != "PN"):
            element_value = value.split("\\") if "\\" in value else value or None
        else:
            element_value = value or None
        try:
            ds.add(DataElement(tag, vr, element_value, validation_mode=config.IGNORE))
        except (ValueError, TypeError, OverflowError):
            # pydicom converts IS, DS and AT values itself: `SeriesNumber=1*` or a typo in a
            # weight was a traceback, exit 1 (walkthrough 7b). Wildcards and ranges do not
            # apply to numbers, nor `""` to a value pydicom must convert (PS3.4 C.2.2.2).
            kind = {"IS": "an integer", "DS": "a decimal number", "AT": "a tag such as 0018,1063"}
            article = "a" if vr == "DS" else "an"
            raise BadKey(
                f"{_keyword(tag)}={quoted(value)}: {article} {vr} key takes "
                f"{kind.get(vr, 'a value of its VR')}, a list of them, or nothing"
            ) from None
    return ds


_CHARSET_TAG: Final = 0x00080005


def _check_encodable(terms: list[str], wanted: Mapping[int, str]) -> None:
    """BadKey unless the character set `terms` is known and holds every value of `wanted`."""
    import warnings

    from pydicom.charset import convert_encodings, encode_string

    shown = "\\".join(terms)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydicom warns, and falls back or puts '?'
        try:
            encodings = convert_encodings(terms)
        except (UserWarning, LookupError, ValueError):
            raise BadKey(
                f"SpecificCharacterSet={quoted(shown)} is not a character set DICOM defines "
                "(PS3.3 C.12.1.1.2), e.g. ISO_IR 100 or ISO_IR 192"
            ) from None
        for tag, value in wanted.items():
            if value.isascii() or tag == _CHARSET_TAG:
                continue
            try:
                encode_string(value, encodings)
            except (UserWarning, UnicodeError, LookupError, ValueError):
                raise BadKey(
                    f"{_keyword(tag)}={quoted(value)} cannot be written in SpecificCharacterSet="
                    f"{quoted(shown)}: give a set that holds it, or leave SpecificCharacterSet "
                    "out (netdicom then writes UTF-8, ISO_IR 192)"
                ) from None


@frozen
class FindResult:
    status: int
    matches: int
    cancelled: bool
    error_comment: str | None = None


OnMatch = Callable[[Any, int], None]


async def find(
    assoc: Association,
    model: Model,
    identifier: Any,
    on_match: OnMatch,
    *,
    max_results: int | None = None,
    cancel: asyncio.Event | None = None,
    timeout: float | None = None,
    cancel_grace: float = 5.0,
) -> FindResult:
    """Send one C-FIND-RQ; call `on_match(dataset, status)` per pending response.

    `max_results` reached or `cancel` set (Ctrl-C) sends one C-CANCEL-RQ (PS3.7 9.3.2.3);
    the final response must then come within `cancel_grace` seconds, whatever the peer keeps
    sending meanwhile (else CancelIgnored), so a peer that ignores the cancel cannot hold
    the command."""
    ctx = require_context(assoc, model.find_sop_class)
    message_id = assoc.message_ids.next()
    data = encode_identifier(identifier, ctx.transfer_syntax)
    await assoc.send_message(ctx.context_id, CFindRQ(message_id, model.find_sop_class), data)
    matches = 0
    cancelled = False
    receiver: CancellableReceiver[tuple[Any, bytes | None]] = CancellableReceiver(
        lambda wait: receive_response(assoc, message_id, wait),
        cancel,
        response="C-FIND-RSP",
        grace=cancel_grace,
    )

    async def send_cancel() -> None:
        nonlocal cancelled
        cancelled = True
        await assoc.send_message(ctx.context_id, CCancelRQ(message_id))
        receiver.cancelled()

    try:
        while True:
            received = await receiver.next(timeout)
            if received is None:
                if not cancelled:
                    await send_cancel()  # Ctrl-C
                continue
            response, dataset = received
            if not isinstance(response, CFindRSP):
                raise RemoteProtocolError(f"expected a C-FIND-RSP, got {command_name(response)}")
            if response.status in (status.PENDING, status.PENDING_WARNING):
                if cancelled:
                    continue  # a match after our cancel: dropped
                if dataset is None:
                    # PS3.7 9.1.2.1.5: a pending response carries its match. One without
                    # would restart the timeout for ever, showing nothing (findscu fails too).
                    raise RemoteProtocolError(
                        "the peer sent a pending C-FIND-RSP without an identifier (a match)"
                    )
                ds = _read_match(dataset, ctx.transfer_syntax)
                apply_fallback_charset(ds)
                on_match(ds, response.status)
                matches += 1
                if max_results is not None and matches >= max_results:
                    await send_cancel()
                continue
            comment = peer_comment(response.error_comment, response.offending_element)
            return FindResult(response.status, matches, cancelled, comment)
    finally:
        receiver.close()
        assoc.message_ids.release(message_id)


def _read_match(data: bytes, transfer_syntax: str) -> Any:
    """A pending response's identifier, checked whole first: pydicom's reader guesses past
    what it cannot read (another VR encoding, a truncated element), and a peer's garbage would
    be shown as a match."""
    from netdicom.archive.scan import DatasetError

    try:
        check_identifier(data, transfer_syntax)
    except DatasetError as exc:
        raise RemoteProtocolError(
            f"a C-FIND match from the peer is not a valid data set: {exc}"
        ) from exc
    return decode_identifier(data, transfer_syntax)


def first_response_number(out: Path) -> int:
    """The number of the next rspNNNNN.dcm in `out`: after the highest already there, so that
    a second query into the same folder neither rewrites the first one's files nor leaves its
    extra ones looking like its own."""
    numbers = [int(m.group(1)) for p in out.glob("rsp*.dcm") if (m := _RSP.fullmatch(p.name))]
    _sweep_responses(out)
    return max(numbers, default=0) + 1


def _sweep_responses(out: Path) -> None:
    """Remove the temporary files of runs that were killed mid-write (SIGKILL leaves them:
    they stayed for good, walkthrough 6a); those of a run still going are left alone."""
    from netdicom.archive.writer import process_alive

    for path in out.glob(".rsp-*.part"):
        found = _PART.fullmatch(path.name)
        if found and not process_alive(int(found.group(1))):
            with contextlib.suppress(OSError):
                path.unlink()


_RSP = re.compile(r"rsp(\d+)\.dcm")
_PART = re.compile(r"\.rsp-(\d+)-.*\.part")


def write_response(ds: Any, out: Path, number: int, sop_class: str) -> int:
    """Write one response identifier as a DICOM file (explicit VR little endian) named
    rspNNNNN.dcm in `out`, NNNNN the first free number from `number` on; returns it. Written
    into a new temporary file, then given the name with link(), which never replaces: written
    in place, a symbolic link planted at that name was followed and the file it led to,
    outside the folder, overwritten; renamed over it, another run writing into the same
    folder at once lost its responses (and a run killed mid-write left half a file)."""
    import tempfile

    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(uids.IMPLEMENTATION_CLASS_UID)
    # Ours with our class UID (pydicom's own name went with it: a pair of two programs).
    meta.ImplementationVersionName = uids.IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    out.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=out, prefix=f".rsp-{os.getpid()}-", suffix=".part")
    try:
        # mkstemp makes it 0600: the mode any other file of ours gets instead (the umask's).
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
        with os.fdopen(fd, "wb") as f:
            ds.save_as(f, enforce_file_format=True, implicit_vr=False, little_endian=True)
        while True:
            try:
                os.link(temporary, out / f"rsp{number:05d}.dcm")
                return number
            except FileExistsError:
                number += 1  # taken (a run beside this one, or an earlier file): the next
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
