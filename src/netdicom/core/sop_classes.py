"""Storage SOP classes (PS3.4 Annex B.5) and transfer syntaxes we know (PS3.5 §10, Annex A).

Derived from pydicom's UID dictionary, so new SOP classes arrive with pydicom updates. pydicom
is imported when these are first used, never at start-up.
"""

from __future__ import annotations

from functools import cache
from typing import Final

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


# The Non-Patient Object Storage SOP classes (PS3.4 Annex GG, Table GG.3-1): objects that
# belong to no patient, study or series (a hanging protocol, a colour palette, an implant
# template, a defined procedure protocol). Every other storage SOP class stores an instance of
# a patient IOD, whose Study and Series Instance UIDs are Type 1 (PS3.3 C.7.2.1, C.7.3.1).
NON_PATIENT_STORAGE: Final = frozenset(
    {
        "1.2.840.10008.5.1.4.38.1",  # Hanging Protocol Storage
        "1.2.840.10008.5.1.4.39.1",  # Color Palette Storage
        "1.2.840.10008.5.1.4.43.1",  # Generic Implant Template Storage
        "1.2.840.10008.5.1.4.44.1",  # Implant Assembly Template Storage
        "1.2.840.10008.5.1.4.45.1",  # Implant Template Group Storage
        "1.2.840.10008.5.1.4.1.1.200.1",  # CT Defined Procedure Protocol Storage
        "1.2.840.10008.5.1.4.1.1.200.3",  # Protocol Approval Storage
        "1.2.840.10008.5.1.4.1.1.200.7",  # XA Defined Procedure Protocol Storage
        "1.2.840.10008.5.1.4.1.1.201.1",  # Inventory Storage
    }
)


def is_patient_storage(sop_class: str) -> bool:
    """A storage SOP class known to hold a patient's instance, filed under a study and a
    series (False for a non-patient object, and for a SOP class we do not know)."""
    return sop_class in storage_sop_classes() and sop_class not in NON_PATIENT_STORAGE


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


# Encapsulated syntaxes whose decoding gives back the original pixels (PS3.5 §8.2, Annex A.4).
# Listed rather than guessed from names: "JPEG-LS Lossy (Near-Lossless)" contains "Lossless".
LOSSLESS_COMPRESSED = frozenset(
    {
        "1.2.840.10008.1.2.1.98",  # Encapsulated Uncompressed Explicit VR Little Endian
        "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Non-Hierarchical (Process 14)
        "1.2.840.10008.1.2.4.58",  # JPEG Lossless, Non-Hierarchical (Process 15)
        "1.2.840.10008.1.2.4.65",  # JPEG Lossless, Hierarchical (Process 28)
        "1.2.840.10008.1.2.4.66",  # JPEG Lossless, Hierarchical (Process 29)
        "1.2.840.10008.1.2.4.70",  # JPEG Lossless, First-Order Prediction
        "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
        "1.2.840.10008.1.2.4.90",  # JPEG 2000 (Lossless Only)
        "1.2.840.10008.1.2.4.92",  # JPEG 2000 Part 2 Multi-component (Lossless Only)
        "1.2.840.10008.1.2.4.201",  # HTJ2K (Lossless Only)
        "1.2.840.10008.1.2.4.202",  # HTJ2K with RPCL Options (Lossless Only)
        "1.2.840.10008.1.2.5",  # RLE Lossless
    }
)
