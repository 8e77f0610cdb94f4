"""Text of stored instances and of C-FIND identifiers, decoded per Specific Character Set.

Each value is decoded with the Specific Character Set (0008,0005) of its own data set
(PS3.5 §6.1), with pydicom's codecs (ISO 2022 code extensions included, e.g. Japanese
`ISO 2022 IR 6\\ISO 2022 IR 87`).

Documented fallback for 8-bit data that declares no character set (common with older
devices, which the standard forbids but the field produces): the bytes are decoded as UTF-8
when they are valid UTF-8, else as ISO 8859-1 (Latin-1), which cannot fail. Data declaring a
character set we cannot decode is decoded as Latin-1 too, and the value is kept, never lost.

Responses are encoded in the character set of the query when every value fits in it, else in
ISO_IR 192 (UTF-8), with Specific Character Set saying which (see `response_charset`).
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Sequence

UTF8 = "ISO_IR 192"
LATIN1 = "ISO_IR 100"
_ESC = 0x1B

# Text VRs whose values are decoded with the character set; others are ASCII by definition.
TEXT_VRS = frozenset({"SH", "LO", "ST", "LT", "UT", "UC", "PN"})
# Characters that separate values and components: never part of an escape sequence (PS3.5 6.1.2.5.3).
_DELIMITERS = {0x5C: "\\", 0x3D: "=", 0x5E: "^"}


def parse_charset(raw: bytes | str | None) -> tuple[str, ...]:
    """The terms of a Specific Character Set value, empty for the default repertoire."""
    if raw is None:
        return ()
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    terms = tuple(t.strip(" \x00") for t in text.split("\\"))
    # The first value may be empty: default repertoire before code extensions.
    return () if not any(terms) else terms


def fallback_charset(raw_values: Iterable[bytes]) -> tuple[str, ...]:
    """The character set to assume for a data set that declares none: () when all its text
    is ASCII, ISO_IR 192 when it is valid UTF-8, else ISO_IR 100 (see module doc)."""
    non_ascii = [raw for raw in raw_values if not raw.isascii()]
    if not non_ascii:
        return ()
    try:
        for raw in non_ascii:
            raw.decode("utf-8")
    except UnicodeDecodeError:
        return (LATIN1,)
    return (UTF8,)


def decode_text(raw: bytes, vr: str, charset: Sequence[str]) -> str:
    """Decode one element value of a text VR (all values, `\\`-joined), padding stripped."""
    if raw.isascii() and _ESC not in raw:
        text = raw.decode("ascii")
    elif not charset:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
    else:
        text = _decode_with(raw, vr, charset)
    return text.strip(" \x00")


def _decode_with(raw: bytes, vr: str, charset: Sequence[str]) -> str:
    from pydicom.charset import convert_encodings, decode_bytes

    try:
        encodings = convert_encodings(list(charset))
    except Exception:  # an unknown term: keep the bytes readable rather than fail
        return raw.decode("latin-1")
    delimiters = {0x5C, 0x3D, 0x5E} if vr == "PN" else {0x5C}
    try:
        return str(decode_bytes(raw, encodings, delimiters))
    except Exception:
        return raw.decode("latin-1")


def python_codec(term: str) -> str | None:
    """The Python codec of a single-byte or UTF-8 character set term, None for ISO 2022 ones."""
    from pydicom.charset import python_encoding

    if term.startswith("ISO 2022"):
        return None
    name = python_encoding.get(term)
    if name is None:
        return None
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    return name


def response_charset(query_charset: Sequence[str], texts: Iterable[str]) -> tuple[str, ...]:
    """The Specific Character Set to encode a response in: the query's when every text value
    fits it (ASCII fits all), else ISO_IR 192."""
    values = [t for t in texts if not t.isascii()]
    if not values:
        return tuple(query_charset)
    if len(query_charset) == 1:
        codec = python_codec(query_charset[0])
        if codec is not None:
            try:
                for value in values:
                    value.encode(codec)
            except UnicodeEncodeError:
                return (UTF8,)
            return tuple(query_charset)
    # Code extensions: encodable when pydicom's encoder manages without replacement.
    iso2022 = all(t.startswith("ISO 2022") or t == "" for t in query_charset)
    if query_charset and iso2022 and all(_fits_iso2022(v, query_charset) for v in values):
        return tuple(query_charset)
    return (UTF8,)


def _fits_iso2022(value: str, charset: Sequence[str]) -> bool:
    from pydicom.charset import convert_encodings, decode_bytes, encode_string

    try:
        encodings = convert_encodings(list(charset))
        encoded = encode_string(value, encodings)
        return bool(decode_bytes(encoded, encodings, set(_DELIMITERS)) == value)
    except Exception:
        return False
