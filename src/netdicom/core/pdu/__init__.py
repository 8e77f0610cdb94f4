"""PDUs and items of PS3.8 §9.3 and PS3.7 Annex D.3.3: values, codec and framer."""

from __future__ import annotations

from netdicom.core.pdu.codec import decode_pdu, encode_pdata, encode_pdata_header, encode_pdu
from netdicom.core.pdu.framer import INTERNAL_PDATA_CAP, Framer
from netdicom.core.pdu.types import (
    PDU,
    AbortPDU,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsyncOpsWindow,
    ContextResult,
    PDataTF,
    PDUType,
    PresentationContextAC,
    PresentationContextRQ,
    PresentationDataValue,
    ReleaseRP,
    ReleaseRQ,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserIdentityType,
    UserInformation,
)

__all__ = [
    "INTERNAL_PDATA_CAP",
    "PDU",
    "AbortPDU",
    "AssociateAC",
    "AssociateRJ",
    "AssociateRQ",
    "AsyncOpsWindow",
    "ContextResult",
    "Framer",
    "PDUType",
    "PDataTF",
    "PresentationContextAC",
    "PresentationContextRQ",
    "PresentationDataValue",
    "ReleaseRP",
    "ReleaseRQ",
    "RoleSelection",
    "SOPClassCommonExtendedNegotiation",
    "SOPClassExtendedNegotiation",
    "UserIdentityAC",
    "UserIdentityRQ",
    "UserIdentityType",
    "UserInformation",
    "decode_pdu",
    "encode_pdata",
    "encode_pdata_header",
    "encode_pdu",
]
