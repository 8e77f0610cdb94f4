"""Query/Retrieve C-FIND SCP (PS3.4 C.4.1) over the archive index.

Patient Root and Study Root information models, levels PATIENT, STUDY, SERIES, IMAGE.

- Identifier: decoded per the context's transfer syntax and its own Specific Character Set.
  Group lengths, Specific Character Set, Query/Retrieve Level, Retrieve AE Title and private
  tags are never matching keys (PS3.4 C.4.1.1.3.1).
- Hierarchy (PS3.4 C.4.1.3.1). Documented leniency: keys of the levels above the query level
  may be missing (no restriction), may be non-unique keys (matched like any key), and unique
  keys there may be lists or wildcards. Keys of levels BELOW the query level are not matched:
  they come back empty, with status FF01, as do private tags and attributes whose values are
  bytes or tags (OB OD OF OL OV OW UN AT).
- Binary numbers (US SS UL SL UV SV FL FD) are keys like any other: single value matching by
  numeric equality (PS3.4 C.2.2.2.1) and, as return keys, the stored value encoded in the VR of
  the request (empty when the stored value does not fit it). A value whose length is not a
  multiple of its VR's size cannot be read: C001 with an Error Comment naming the key.
- Every other requested attribute of the query level or above is answered: from the index's
  columns, the computed attributes (Number of ... Related ..., Modalities/SOP Classes in
  Study), or read from a stored file of the entity (a representative instance).
- Responses carry the requested keys plus Query/Retrieve Level, Specific Character Set and
  Retrieve AE Title (PS3.4 C.4.1.1.3.2), encoded in the query's character set when every value
  fits, else in ISO_IR 192.
- C-CANCEL-RQ is looked for between pending responses; when found, the final status is FE00.
- A bad identifier gets a failure status with an Error Comment, never an abort: A900 for an
  identifier that does not fit the model (level missing or wrong), C000-range when it cannot be
  decoded (C001) or the query fails (C002).
- Extended negotiation (PS3.4 C.5.1.1): we support combined date-time matching only, and
  answer with that, never an echo of the request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO, Final, cast

from netdicom.archive.charset import TEXT_VRS, decode_text, parse_charset, response_charset
from netdicom.archive.index import Index, Match, Query, computed_for
from netdicom.archive.matching import (
    COMPUTED_BY_TAG,
    FIND_SOP_CLASSES,
    NUMBER_VRS,
    QUERY_RETRIEVE_LEVEL,
    RETRIEVE_AE_TITLE,
    SPECIFIC_CHARACTER_SET,
    Items,
    Key,
    Level,
    Model,
    Values,
    level_of,
    match_record,
    parse_number,
)
from netdicom.core import uids
from netdicom.core.acse import AcceptedContext
from netdicom.core.dimse import CCancelRQ, CFindRQ, CFindRSP, DatasetFragment, DimseMessage, status
from netdicom.core.errors import NetDicomError, TimeoutExpired
from netdicom.core.printable import quoted
from netdicom.core.records import frozen
from netdicom.services.events import emit
from netdicom.transport.association import Association, ReleaseRequested

log = logging.getLogger("netdicom.find")

IDENTIFIER_UNDECODABLE: Final = 0xC001
# A real query holds tens of keys. Each element costs pydicom ~30 µs and ~0.5 KB to decode:
# 500 000 empty ones (4 MB) took 17 s and 230 MB (walk-through 4). Beyond this, refused.
MAX_IDENTIFIER_ELEMENTS: Final = 10_000
# A wildcard pattern longer than this is refused: matching compiles it (a 200 000-character
# pattern took 1.7 s), and no attribute a user queries on is anywhere near as long.
MAX_WILDCARD_LENGTH: Final = 1024
QUERY_FAILED: Final = 0xC002
# Values that are bytes or tags, not matched and returned empty (FF01). AT is here because a
# tag is neither text nor a number we match; binary numbers (US ... FD) are answered.
_BINARY_VRS: Final = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN", "AT"})
# struct formats of the binary number VRs (PS3.5 6.2), for reading an identifier's values.
_NUMBER_FORMATS: Final = {
    "US": "H",
    "SS": "h",
    "UL": "I",
    "SL": "i",
    "UV": "Q",
    "SV": "q",
    "FL": "f",
    "FD": "d",
}
_BATCH: Final = 256

# Q/R extended negotiation application information (PS3.4 C.5.1.1): byte 0 relational
# queries, 1 combined date-time matching, 2 fuzzy semantic matching of person names,
# 3 timezone query adjustment. We support byte 1 only.
_DATE_TIME_BYTE: Final = 1


def extended_negotiation_answer(sop_class: str, requested: bytes) -> bytes | None:
    """Our answer to a Q/R FIND extended negotiation sub-item: what we support of what was
    asked (combined date-time matching), the rest 0; None for other SOP classes."""
    if sop_class not in FIND_SOP_CLASSES:
        return None
    answer = bytearray(min(len(requested), 4))
    if len(requested) > _DATE_TIME_BYTE and requested[_DATE_TIME_BYTE] == 1:
        answer[_DATE_TIME_BYTE] = 1
    return bytes(answer) if answer else None


# --- the identifier codec (pydicom, imported lazily) ---------------------------------------


def decode_identifier(data: bytes, transfer_syntax: str) -> Any:
    """A pydicom Dataset from identifier bytes in `transfer_syntax` (raw elements: values are
    decoded on access with the identifier's own character set)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import read_dataset

    if transfer_syntax == uids.DEFLATED_EXPLICIT_VR_LE:
        data = zlib.decompress(data, -zlib.MAX_WBITS)
    implicit = transfer_syntax == uids.IMPLICIT_VR_LE
    little = transfer_syntax != uids.EXPLICIT_VR_BE
    return read_dataset(cast(BinaryIO, DicomBytesIO(data)), implicit, little)


def check_identifier(data: bytes, transfer_syntax: str) -> None:
    """Raise DatasetError unless `data` is one complete data set (pydicom's reader stops
    quietly at a truncated element)."""
    from netdicom.archive.scan import DatasetScanner

    if transfer_syntax == uids.DEFLATED_EXPLICIT_VR_LE:
        return  # checked by inflating
    scanner = DatasetScanner(
        implicit_vr=transfer_syntax == uids.IMPLICIT_VR_LE,
        little_endian=transfer_syntax != uids.EXPLICIT_VR_BE,
        max_elements=MAX_IDENTIFIER_ELEMENTS,
    )
    scanner.feed(data)
    scanner.finish()


def encode_identifier(ds: Any, transfer_syntax: str) -> bytes:
    """Identifier bytes of a pydicom Dataset in `transfer_syntax` (never big endian: we
    do not accept it for Q/R contexts)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    fp = DicomBytesIO()
    fp.is_implicit_VR = transfer_syntax == uids.IMPLICIT_VR_LE
    fp.is_little_endian = True
    write_dataset(fp, ds)
    data = fp.getvalue()
    if transfer_syntax == uids.DEFLATED_EXPLICIT_VR_LE:
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        data = compressor.compress(data) + compressor.flush()
        if len(data) % 2:
            data += b"\x00"
    return bytes(data)


# --- identifier -> query ------------------------------------------------------------------


class BadIdentifier(NetDicomError):
    def __init__(self, code: int, comment: str) -> None:
        super().__init__(comment)
        self.code = code
        self.comment = comment


@frozen
class Requested:
    """One attribute of the identifier: returned in every response."""

    tag: int
    vr: str
    key: Key | None  # None: not answered (below the level, private, binary): empty + FF01
    # A Private Creator's value, echoed: it reserves the block its private keys belong to
    # (PS3.5 7.8.1), and is no key itself.
    echo: str | None = None


@frozen
class ParsedIdentifier:
    model: Model
    level: Level
    charset: tuple[str, ...]
    requested: tuple[Requested, ...]

    @property
    def unsupported(self) -> bool:
        return any(r.key is None and r.echo is None for r in self.requested)

    def query(self, combined_datetime: bool) -> Query:
        keys = tuple(
            r.key for r in self.requested if r.key is not None and r.tag != RETRIEVE_AE_TITLE
        )
        return Query(
            self.model,
            self.level,
            keys,
            frozenset(k.tag for k in keys),
            combined_datetime,
        )


def _parse(data: bytes, transfer_syntax: str, model: Model) -> ParsedIdentifier:
    try:
        check_identifier(data, transfer_syntax)
        ds = decode_identifier(data, transfer_syntax)
    except Exception as exc:
        raise BadIdentifier(IDENTIFIER_UNDECODABLE, f"cannot decode the identifier: {exc}") from exc
    return parse_identifier(ds, model)


def parse_identifier(ds: Any, model: Model) -> ParsedIdentifier:
    """The query an identifier asks for; BadIdentifier when it does not fit the model."""
    raw_level = ds.get_item(QUERY_RETRIEVE_LEVEL) if QUERY_RETRIEVE_LEVEL in ds else None
    level_text = _raw_text(raw_level.value) if raw_level is not None else ""
    level = Level.parse(level_text)
    allowed = "/".join(lv.name for lv in model.levels)
    if level is None or level not in model.levels:
        # Error Comment is an LO: at most 64 characters.
        comment = (
            f"(0008,0052) {quoted(level_text[:12])} not in {model.value} root: {allowed}"
            if level_text
            else "Query/Retrieve Level (0008,0052) missing"
        )
        raise BadIdentifier(status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, comment)
    raw_charset = ds.get_item(SPECIFIC_CHARACTER_SET) if SPECIFIC_CHARACTER_SET in ds else None
    charset = parse_charset(raw_charset.value if raw_charset is not None else None)
    requested: list[Requested] = []
    for tag in sorted(int(t) for t in ds.keys()):  # noqa: SIM118 (iterating converts)
        if tag in (SPECIFIC_CHARACTER_SET, QUERY_RETRIEVE_LEVEL) or tag & 0xFFFF == 0:
            continue
        vr = _vr_of(ds, tag)
        if tag == RETRIEVE_AE_TITLE:
            requested.append(Requested(tag, "AE", Key(tag, "AE")))
            continue
        if (tag >> 16) % 2 == 1 and 0x10 <= tag & 0xFFFF <= 0xFF:
            # Returned empty, the private keys that follow belonged to no block: pydicom's
            # private_block() raised KeyError on the response (walkthrough 7c).
            creator = _raw_text(ds.get_item(tag).value)
            requested.append(Requested(tag, "LO", None, echo=creator))
            continue
        if (
            (tag >> 16) % 2 == 1
            or vr in _BINARY_VRS
            or level_of(tag, model) > level
            # A computed key (ModalitiesInStudy, Number of ... Related ...) is computed at its
            # own level only: asked below it, it came back empty with FF00 and, given a value,
            # matched nothing (walkthrough 7b). Not supported there: FF01, not matched.
            or (tag in COMPUTED_BY_TAG and level_of(tag, model) != level)
        ):
            requested.append(Requested(tag, vr, None))
            continue
        requested.append(Requested(tag, vr, _key(ds, tag, vr, charset)))
    return ParsedIdentifier(model, level, charset, tuple(requested))


def _raw_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip(" \x00")
    return str(value or "").strip(" \x00")


def _vr_of(ds: Any, tag: int) -> str:
    raw = ds.get_item(tag)
    vr = getattr(raw, "VR", None)
    if vr and (vr != "UN" or (tag >> 16) % 2):
        return str(vr)
    # UN for a standard element: in explicit VR a value over 65,534 bytes cannot carry a
    # 16-bit length, so a long list of UIDs comes as UN (PS3.5 6.2.2). pydicom maps UN back to
    # the dictionary's VR only for short values: taken as bytes, the unique key was dropped
    # and every study matched (walkthrough 7b). Read with the dictionary's VR, as C-GET does.
    from pydicom.datadict import dictionary_VR

    try:
        found = str(dictionary_VR(tag))
    except KeyError:
        return "UN"
    if found == "SQ" and vr == "UN":
        return "UN"  # a sequence in UN form: items in implicit VR, not read here
    # Ambiguous dictionary VRs (e.g. "US or SS") do not matter for matching: take the first.
    return found.split(" or ")[0]


def _key(ds: Any, tag: int, vr: str, charset: Sequence[str], depth: int = 0) -> Key:
    if vr == "SQ":
        try:
            items = ds[tag].value
        except Exception as exc:
            raise BadIdentifier(IDENTIFIER_UNDECODABLE, f"cannot decode sequence: {exc}") from exc
        if not items or depth > 4:
            return Key(tag, "SQ", items=None)
        # PS3.4 C.2.2.2.6: one item holds the keys; further items are ignored (leniency).
        item = items[0]
        sub = [
            _key(item, int(t), _vr_of(item, int(t)), charset, depth + 1)
            for t in sorted(int(t) for t in item.keys())  # noqa: SIM118
            if int(t) & 0xFFFF and not (int(t) >> 16) % 2 and int(t) != SPECIFIC_CHARACTER_SET
        ]
        return Key(tag, "SQ", items=tuple(sub))
    if vr in NUMBER_VRS:
        return Key(tag, vr, _number_text(ds.get_item(tag), tag, vr))
    raw = ds.get_item(tag).value
    if raw is None:
        return Key(tag, vr, "")
    if isinstance(raw, bytes):
        text = decode_text(raw, vr, charset) if vr in TEXT_VRS else _raw_text(raw)
    else:
        text = "\\".join(str(v) for v in raw) if isinstance(raw, list) else str(raw)
    text = text.strip(" \x00")
    if len(text) > MAX_WILDCARD_LENGTH and ("*" in text or "?" in text):
        raise BadIdentifier(
            IDENTIFIER_UNDECODABLE,
            f"({tag >> 16:04X},{tag & 0xFFFF:04X}): wildcard key over {MAX_WILDCARD_LENGTH} chars",
        )
    return Key(tag, vr, text)


def _number_text(element: Any, tag: int, vr: str) -> str:
    """A binary number key as the decimal text matching works on (`16`, `1\\2`, `0.5`); ''
    when zero length. BadIdentifier when its length does not fit the VR."""
    value = element.value
    if value is None or value == b"":
        return ""
    if isinstance(value, bytes):
        numbers = _unpack_numbers(value, vr, getattr(element, "is_little_endian", True), tag)
    elif isinstance(value, Sequence) and not isinstance(value, str):  # list, MultiValue
        numbers = list(value)
    else:
        numbers = [value]
    return "\\".join(str(n) for n in numbers)


def _unpack_numbers(data: bytes, vr: str, little: bool, tag: int) -> list[int | float]:
    code = _NUMBER_FORMATS[vr]
    size = struct.calcsize(code)
    if len(data) % size:
        # Cxxx "unable to process" (PS3.4 C.4.1.1.4): not a value we could match or return;
        # the Error Comment (an LO, 64 characters) names the key.
        raise BadIdentifier(
            IDENTIFIER_UNDECODABLE,
            f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {vr}: {len(data)} bytes, not {size}*n",
        )
    order = "<" if little else ">"
    return list(struct.unpack(f"{order}{len(data) // size}{code}", data))


# --- the handler ---------------------------------------------------------------------------


class FindSCP:
    """Answers C-FIND-RQs on Q/R FIND contexts from `index`."""

    def __init__(self, index: Index, ae_title: str) -> None:
        self.index = index
        self.ae_title = ae_title
        from netdicom.archive.rebuild import read_attributes

        self._reader = functools.partial(read_attributes, index.directory)

    async def handle(
        self, assoc: Association, context: AcceptedContext, message: DimseMessage
    ) -> None:
        assert isinstance(message, CFindRQ)
        data = await _identifier(assoc, message)
        model = Model.for_sop_class(context.abstract_syntax)
        if model is None or message.affected_sop_class_uid != context.abstract_syntax:
            await self._final(assoc, context, message, status.SOP_CLASS_NOT_SUPPORTED)
            return
        try:
            if data is None:
                raise BadIdentifier(
                    status.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, "C-FIND-RQ without an identifier"
                )
            # Off the event loop: decoding is pydicom's work, bounded by the element cap but
            # not free, and every other association waits while the loop is busy.
            parsed = await asyncio.to_thread(_parse, data, context.transfer_syntax, model)
        except BadIdentifier as exc:
            log.info("C-FIND from %s refused: %s", assoc.peer, exc.comment)
            await self._final(assoc, context, message, exc.code, exc.comment[:64])
            return
        negotiated = assoc.negotiated
        answer = (
            negotiated.extended_negotiation.get(context.abstract_syntax) if negotiated else None
        )
        combined = bool(answer and len(answer) > _DATE_TIME_BYTE and answer[_DATE_TIME_BYTE])
        matches: list[int] = [0]
        code, comment = await self._answer(
            assoc, context, message, parsed, parsed.query(combined), matches
        )
        await self._final(assoc, context, message, code, comment)
        emit(
            "query",
            f"C-FIND from {assoc.peer}: {parsed.level.name} level, {matches[0]} matches, "
            f"status 0x{code:04X}",
            peer=assoc.peer,
            model=model.value,
            level=parsed.level.name,
            matches=matches[0],
            status=code,
        )

    def _complete_or_not(self) -> tuple[int, str | None]:
        """Success, unless stored instances wait for an index that cannot be written (a full
        disk): the matches are sent, then a failure that says the answer may lack them. It
        was Success, and an SCU took the list for complete (walkthrough 6a)."""
        waiting = self.index.stranded
        if not waiting:
            return status.SUCCESS, None
        log.warning("C-FIND answered without %d stored instances not yet indexed", waiting)
        return QUERY_FAILED, not_yet_indexed(waiting)

    async def _answer(
        self,
        assoc: Association,
        context: AcceptedContext,
        message: CFindRQ,
        parsed: ParsedIdentifier,
        query: Query,
        matches: list[int],
    ) -> tuple[int, str | None]:
        """Send a pending response per match (counted in `matches[0]`); the final status."""
        pending = status.PENDING_WARNING if parsed.unsupported else status.PENDING
        batches: Iterator[list[Match]] = self.index.find(query, self._reader, batch=_BATCH)
        sent = 0
        try:
            while True:
                batch = await asyncio.to_thread(next, batches, None)
                if batch is None:
                    return self._complete_or_not()
                for match in batch:
                    if await _cancel_requested(assoc, message.message_id):
                        log.info("C-FIND cancelled by %s after %d matches", assoc.peer, sent)
                        return status.CANCEL, None
                    ds = self._response(parsed, query, match)
                    await assoc.send_message(
                        context.context_id,
                        CFindRSP(
                            message.message_id,
                            pending,
                            message.affected_sop_class_uid,
                            has_dataset=True,
                        ),
                        encode_identifier(ds, context.transfer_syntax),
                    )
                    sent += 1
                    matches[0] = sent
        except NetDicomError:
            raise
        except Exception as exc:
            log.exception("C-FIND from %s failed after %d matches", assoc.peer, sent)
            return QUERY_FAILED, f"query failed: {exc}"[:64]
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                await asyncio.to_thread(close)

    def _response(self, parsed: ParsedIdentifier, query: Query, match: Match) -> Any:
        from pydicom.dataset import Dataset

        ds = Dataset()
        texts: list[str] = []
        computed = computed_for(query)
        for item in parsed.requested:
            if item.echo is not None:
                ds.add_new(item.tag, "LO", item.echo or None)
                continue
            if item.key is None:
                ds.add_new(item.tag, item.vr, None)
                continue
            if item.tag == RETRIEVE_AE_TITLE:
                ds.add_new(item.tag, "AE", self.ae_title)
                continue
            stored = match.record.get(item.tag, ())
            vr = COMPUTED_BY_TAG[item.tag].vr if item.tag in computed else item.vr
            _add(ds, item.tag, vr, stored, item.key, texts)
        ds.QueryRetrieveLevel = parsed.level.name
        if RETRIEVE_AE_TITLE not in ds:
            ds.RetrieveAETitle = self.ae_title
        charset = response_charset(parsed.charset, texts)
        # Absent for the default repertoire: never zero-length (PS3.4 C.2.2.2).
        if charset:
            ds.add_new(
                SPECIFIC_CHARACTER_SET, "CS", list(charset) if len(charset) > 1 else charset[0]
            )
        return ds

    async def _final(
        self,
        assoc: Association,
        context: AcceptedContext,
        message: CFindRQ,
        code: int,
        comment: str | None = None,
    ) -> None:
        await assoc.send_message(
            context.context_id,
            CFindRSP(
                message.message_id, code, message.affected_sop_class_uid, error_comment=comment
            ),
        )


def _add(ds: Any, tag: int, vr: str, stored: Values | Items, key: Key, texts: list[str]) -> None:
    from pydicom.datadict import dictionary_VR
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as PydicomSequence

    if vr == "SQ":
        items = stored if isinstance(stored, list) else []
        wanted = {k.tag: k for k in key.items} if key.items else None
        if not key.is_universal and key.items:
            # Only the items that matched (PS3.4 C.2.2.2.6: "a sequence of matching Items
            # containing only the requested Attributes is returned").
            items = [record for record in items if match_record(key.items, record)]
        out = []
        for record in items:
            item = Dataset()
            for sub_tag, value in record.items():
                if wanted is not None and sub_tag not in wanted:
                    continue
                sub_key = wanted[sub_tag] if wanted is not None else None
                try:
                    sub_vr = sub_key.vr if sub_key is not None else str(dictionary_VR(sub_tag))
                except KeyError:
                    continue
                if " or " in sub_vr or sub_vr in _BINARY_VRS:
                    continue
                _add(item, sub_tag, sub_vr, value, sub_key or Key(sub_tag, sub_vr), texts)
            if wanted is not None:
                for sub_tag, sub_key in wanted.items():
                    if sub_tag not in item:
                        item.add_new(sub_tag, sub_key.vr, None)
            out.append(item)
        ds.add_new(tag, "SQ", PydicomSequence(out))
        return
    values = stored if isinstance(stored, tuple) else ()
    texts.extend(v for v in values if vr in TEXT_VRS)
    if vr in NUMBER_VRS:
        ds.add_new(tag, vr, _numbers_or_none(vr, values))
    elif not values:
        ds.add_new(tag, vr, None)
    elif len(values) == 1:
        ds.add_new(tag, vr, values[0])
    else:
        ds.add_new(tag, vr, list(values))


def _numbers_or_none(vr: str, values: Values) -> int | float | list[int | float] | None:
    """Stored values (decimal text) as the numbers of a binary number return key; None (zero
    length, as for an attribute without a value, PS3.4 C.4.1.1.3.2) when one of them is not a
    number of that VR: a US element cannot carry -5 or 1.5."""
    try:
        numbers = [parse_number(vr, v) for v in values]
    except ValueError:
        return None
    if not numbers:
        return None
    return numbers[0] if len(numbers) == 1 else numbers


def not_yet_indexed(count: int) -> str:
    """The Error Comment (LO, 64 characters) of a query or retrieve answered while `count`
    stored instances wait for an index that cannot be written."""
    return f"{count} stored instances not yet indexed (disk full?)"[:64]


async def _identifier(assoc: Association, message: CFindRQ) -> bytes | None:
    if not message.has_dataset:
        return None
    return await assoc.receive_dataset(assoc.config.timeouts.dimse, what="C-FIND identifier")


async def _cancel_requested(assoc: Association, message_id: int) -> bool:
    """Take a queued C-CANCEL-RQ for `message_id` without waiting (PS3.7 9.3.2.3).

    The peer may send nothing else while its C-FIND is pending (one outstanding operation:
    no asynchronous window is negotiated); a release request waits for the matches and the
    final response (answered dropping them, the C-FIND was lost without a word); anything
    else is logged and ignored."""
    while not assoc.release_queued:
        try:
            event = await assoc.receive(0)
        except TimeoutExpired:
            return False
        if isinstance(event, ReleaseRequested):
            log.info("%s asked for the release during its C-FIND: answered after it", assoc.peer)
            assoc.keep_release(event)
            return False
        if isinstance(event, DatasetFragment):
            continue
        if isinstance(event.message, CCancelRQ):
            if event.message.message_id_being_responded_to == message_id:
                return True
            continue
        log.warning(
            "%s sent %s while its C-FIND was pending: ignored",
            assoc.peer,
            type(event.message).__name__,
        )
    return False
