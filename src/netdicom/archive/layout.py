"""Where an instance goes in the archive: the `--layout` template, made safe.

Every path component built from a value the peer sent is sanitised: UIDs must be UIDs (PS3.5
§9.1: digits and dots), anything else keeps only `A-Z a-z 0-9 . _ - ^` and letters and digits
beyond ASCII, with the rest replaced by `_`, never starts with a dot, is at most 64 characters,
and an empty value becomes a placeholder. The final path is checked to be inside the archive
folder.

Text is decoded per the data set's Specific Character Set first (archive.charset), and
normalised (NFC): "Müller^Jürgen" is one folder whether it came in ISO_IR 100 or UTF-8, and
two patients named in kanji do not share a folder of underscores.
"""

from __future__ import annotations

import hashlib
import os
import re
import string
import unicodedata
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Final

from netdicom.archive.charset import TEXT_VRS, decode_text, parse_charset
from netdicom.core.printable import quoted
from netdicom.core.records import frozen

DEFAULT_LAYOUT: Final = "{PatientID}/{StudyInstanceUID}/{SeriesInstanceUID}/{SOPInstanceUID}.dcm"
PLACEHOLDER: Final = "UNKNOWN"
MAX_COMPONENT: Final = 64
# NAME_MAX of Linux file systems, in bytes; a component over it is cut (see _fit).
NAME_MAX: Final = 255
_DIGEST_SEP: Final = "~"
_DIGEST_LEN: Final = 8

SOP_CLASS_UID: Final = 0x00080016
SOP_INSTANCE_UID: Final = 0x00080018
SPECIFIC_CHARACTER_SET: Final = 0x00080005

# Attributes a layout may use: values that are short text (PS3.5 Table 6.2-1).
_TEXT_VRS: Final = frozenset(
    {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "PN", "SH", "TM", "UI", "UC"}
)
_UID: Final = re.compile(r"[0-9]+(\.[0-9]+)*")
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._^-]")


class LayoutError(ValueError):
    """The template itself is unusable (raised at start-up)."""


class UnsafePath(ValueError):
    """A value from the peer cannot be turned into a safe path (the store fails)."""


@frozen
class _Field:
    keyword: str
    tag: int
    vr: str

    @property
    def is_uid(self) -> bool:
        return self.vr == "UI"


@frozen
class Layout:
    """A parsed `--layout` template; `tags` are the top-level attributes it needs."""

    template: str
    components: tuple[tuple[str | _Field, ...], ...]
    tags: frozenset[int]

    @classmethod
    def parse(cls, template: str = DEFAULT_LAYOUT) -> Layout:
        from pydicom.datadict import dictionary_VR, tag_for_keyword

        if not template or template.startswith("/") or "\\" in template:
            raise LayoutError("the layout must be a relative path with / separators")
        components: list[tuple[str | _Field, ...]] = []
        tags: set[int] = set()
        for raw in template.split("/"):
            parts: list[str | _Field] = []
            try:
                parsed = list(string.Formatter().parse(raw))
            except ValueError as exc:
                raise LayoutError(f"bad layout component {quoted(raw)}: {exc}") from None
            for literal, name, spec, conversion in parsed:
                if literal:
                    parts.append(literal)
                if name is None:
                    continue
                if spec or conversion:
                    raise LayoutError(f"{{{name}}}: format specs and conversions are not supported")
                tag = tag_for_keyword(name)
                if tag is None:
                    raise LayoutError(f"{{{name}}} is not a DICOM attribute keyword")
                vr = dictionary_VR(tag)
                if vr not in _TEXT_VRS or tag >> 16 == 0x0002:
                    raise LayoutError(f"{{{name}}} ({vr}) cannot be used in a path")
                parts.append(_Field(name, tag, vr))
                tags.add(tag)
                if vr in TEXT_VRS:
                    tags.add(SPECIFIC_CHARACTER_SET)  # to decode it
            literal_only = "".join(p for p in parts if isinstance(p, str))
            if not parts or (
                all(isinstance(p, str) for p in parts) and literal_only in (".", "..")
            ):
                raise LayoutError(f"empty, '.' or '..' component in layout {quoted(template)}")
            components.append(tuple(parts))
        if SOP_INSTANCE_UID not in tags:
            raise LayoutError("the layout must contain {SOPInstanceUID}, or instances collide")
        return cls(template, tuple(components), frozenset(tags))

    def render(self, values: Mapping[int, bytes | str]) -> PurePosixPath:
        """The relative path for an instance whose attributes are `values` (raw bytes as
        received, or str); raises UnsafePath for an invalid UID."""
        out: list[str] = []
        for component in self.components:
            pieces: list[str] = []
            for part in component:
                if isinstance(part, str):
                    pieces.append(part)
                    continue
                raw = values.get(part.tag, b"")
                if isinstance(raw, str):
                    text = raw
                elif part.vr in TEXT_VRS:
                    charset = values.get(SPECIFIC_CHARACTER_SET)
                    text = decode_text(raw, part.vr, parse_charset(charset))
                else:
                    text = raw.decode("latin-1")
                text = text.strip(" \x00")
                pieces.append(_uid_component(part.keyword, text) if part.is_uid else _clean(text))
            texts = [
                number
                for number, part in enumerate(component)
                if not isinstance(part, str) and not part.is_uid
            ]
            name = _fit(pieces, texts)
            if name in (".", "..") or not name or "/" in name:
                raise UnsafePath(f"layout gave an unsafe path component {quoted(name)}")
            out.append(name)
        return PurePosixPath(*out)


def _fit(pieces: list[str], texts: list[int]) -> str:
    """The component made of `pieces`, within NAME_MAX bytes: a field is at most 64
    characters, but 64 letters of 4 bytes in UTF-8, or several fields in one component, made
    a name the file system refuses ("File name too long", answered as out of resources, and
    sent again for ever). The text fields (`texts`: their indexes) are cut, longest first,
    each ending in a digest of its whole value so that two long values stay apart; UIDs and
    the layout's own text are kept whole."""
    excess = sum(len(piece.encode()) for piece in pieces) - NAME_MAX
    for number in sorted(texts, key=lambda n: -len(pieces[n].encode())):
        if excess <= 0:
            break
        text = pieces[number].encode()
        keep = max(0, len(text) - excess - len(_DIGEST_SEP) - _DIGEST_LEN)
        digest = hashlib.sha256(text).hexdigest()[:_DIGEST_LEN]
        short = f"{text[:keep].decode(errors='ignore')}{_DIGEST_SEP}{digest}"
        excess -= len(text) - len(short.encode())
        pieces[number] = short
    return "".join(pieces)


def _uid_component(keyword: str, value: str) -> str:
    if not value:
        return PLACEHOLDER
    if len(value) > 64 or not _UID.fullmatch(value):
        raise UnsafePath(f"{keyword} {quoted(value[:80])} is not a valid UID")
    return value


def _clean(value: str) -> str:
    if value.isascii():
        cleaned = _UNSAFE.sub("_", value)
    else:
        value = unicodedata.normalize("NFC", value)
        cleaned = "".join(
            char if char.isalnum() and not char.isascii() else _UNSAFE.sub("_", char)
            for char in value
        )
    cleaned = cleaned[:MAX_COMPONENT]
    if cleaned.startswith((".", "-")):
        # A hidden name, or one a shell glob hands to a command as an option (`rm -r *`
        # meeting a folder named -rf from a peer's PatientID).
        cleaned = "_" + cleaned[1:]
    return cleaned or PLACEHOLDER


def is_valid_uid(value: str) -> bool:
    return len(value) <= 64 and _UID.fullmatch(value) is not None


def inside(root: Path, path: Path) -> bool:
    """True when `path` (after resolving symbolic links) is `root` or below it; `root` must be
    resolved already."""
    real = os.path.realpath(path)
    return real == str(root) or real.startswith(str(root).rstrip(os.sep) + os.sep)
