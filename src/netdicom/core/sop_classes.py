"""Storage SOP classes (PS3.4 Annex B.5) and transfer syntaxes we know (PS3.5 §10, Annex A).

Derived from pydicom's UID dictionary, so new SOP classes arrive with pydicom updates. pydicom
is imported when these are first used, never at start-up.
"""

from __future__ import annotations

from functools import cache

from netdicom.core import uids

# Not storage in the C-STORE sense, although their names say "Storage".
_NOT_STORAGE = {
    "1.2.840.10008.1.3.10",  # Media Storage Directory Storage (DICOMDIR)
}


@cache
def storage_sop_classes() -> frozenset[str]:
    """Every (current or retired) Storage SOP class pydicom knows."""
    from pydicom._uid_dict import UID_dictionary

    return frozenset(
        uid
        for uid, entry in UID_dictionary.items()
        if entry[1] == "SOP Class"
        and "Storage" in entry[0]
        and "Commitment" not in entry[0]
        and uid not in _NOT_STORAGE
    )


UNCOMPRESSED = (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE, uids.EXPLICIT_VR_BE)
NATIVE_LITTLE_ENDIAN = (uids.EXPLICIT_VR_LE, uids.IMPLICIT_VR_LE)


@cache
def known_transfer_syntaxes() -> frozenset[str]:
    """Public transfer syntaxes (PS3.5 Annex A); private ones are not here."""
    from pydicom._uid_dict import UID_dictionary

    return frozenset(uid for uid, entry in UID_dictionary.items() if entry[1] == "Transfer Syntax")


def is_compressed(transfer_syntax: str) -> bool:
    """Encapsulated pixel data (anything but the native syntaxes and deflate)."""
    return transfer_syntax not in UNCOMPRESSED and transfer_syntax != uids.DEFLATED_EXPLICIT_VR_LE


@cache
def is_lossless(transfer_syntax: str) -> bool:
    """A syntax whose decoding gives back the original pixels (or uncompressed)."""
    if not is_compressed(transfer_syntax):
        return True
    from pydicom._uid_dict import UID_dictionary

    entry = UID_dictionary.get(transfer_syntax)
    if entry is None:
        return False
    name = entry[0].lower()
    return "lossless" in name or "rle" in name or "deflate" in name
