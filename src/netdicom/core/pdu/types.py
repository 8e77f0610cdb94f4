"""PDU and item values (PS3.8 §9.3, PS3.7 D.3.3), frozen so they can be shared freely.

Strings here are already decoded: AE titles without their space/NUL padding, UIDs without a
trailing NUL or space. The codec (codec.py) owns every byte-level detail.
"""

from __future__ import annotations

from dataclasses import field
from enum import IntEnum

from netdicom.core import uids
from netdicom.core.records import frozen


class PDUType(IntEnum):
    ASSOCIATE_RQ = 0x01
    ASSOCIATE_AC = 0x02
    ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    RELEASE_RQ = 0x05
    RELEASE_RP = 0x06
    ABORT = 0x07


class ContextResult(IntEnum):
    """Result/reason of a presentation context in an A-ASSOCIATE-AC (PS3.8 Table 9-18)."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    NO_REASON = 2
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 4


class UserIdentityType(IntEnum):
    """User identity type of sub-item 0x58 (PS3.7 Table D.3-14)."""

    USERNAME = 1
    USERNAME_AND_PASSCODE = 2
    KERBEROS = 3
    SAML = 4
    JWT = 5


@frozen
class PresentationContextRQ:
    """Item 0x20: one abstract syntax and the transfer syntaxes offered for it."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@frozen
class PresentationContextAC:
    """Item 0x21; `transfer_syntax` is not significant unless the result is acceptance."""

    context_id: int
    result: ContextResult
    transfer_syntax: str = uids.IMPLICIT_VR_LE


@frozen
class AsyncOpsWindow:
    """Sub-item 0x53; 0 means unlimited (PS3.7 D.3.3.3)."""

    max_invoked: int = 1
    max_performed: int = 1


@frozen
class RoleSelection:
    """Sub-item 0x54. In an RQ: roles proposed; in an AC: roles accepted (PS3.7 D.3.3.4)."""

    sop_class_uid: str
    scu_role: bool
    scp_role: bool


@frozen
class SOPClassExtendedNegotiation:
    """Sub-item 0x56; the application information is service-specific (PS3.4)."""

    sop_class_uid: str
    service_class_application_information: bytes


@frozen
class SOPClassCommonExtendedNegotiation:
    """Sub-item 0x57, RQ only (PS3.7 D.3.3.6)."""

    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: tuple[str, ...] = ()


@frozen
class UserIdentityRQ:
    """Sub-item 0x58 (PS3.7 D.3.3.7.1); `secondary` only for USERNAME_AND_PASSCODE."""

    identity_type: UserIdentityType | int
    positive_response_requested: bool
    primary: bytes
    secondary: bytes = b""


@frozen
class UserIdentityAC:
    """Sub-item 0x59 (PS3.7 D.3.3.7.2)."""

    server_response: bytes = b""


@frozen
class UserInformation:
    """Item 0x50 with its sub-items. `max_length` 0 means no limit (PS3.8 D.1)."""

    max_length: int
    implementation_class_uid: str = uids.IMPLEMENTATION_CLASS_UID
    implementation_version_name: str | None = uids.IMPLEMENTATION_VERSION_NAME
    async_ops_window: AsyncOpsWindow | None = None
    role_selections: tuple[RoleSelection, ...] = ()
    extended_negotiations: tuple[SOPClassExtendedNegotiation, ...] = ()
    common_extended_negotiations: tuple[SOPClassCommonExtendedNegotiation, ...] = ()
    user_identity_rq: UserIdentityRQ | None = None
    user_identity_ac: UserIdentityAC | None = None


@frozen
class AssociateRQ:
    """A-ASSOCIATE-RQ (PS3.8 §9.3.2)."""

    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextRQ, ...]
    user_information: UserInformation
    application_context_name: str = uids.APPLICATION_CONTEXT
    protocol_version: int = 1
    pdu_type: PDUType = field(default=PDUType.ASSOCIATE_RQ, init=False, repr=False)


@frozen
class AssociateAC:
    """A-ASSOCIATE-AC (PS3.8 §9.3.3). The AE title fields echo the RQ and are not tested."""

    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextAC, ...]
    user_information: UserInformation
    application_context_name: str = uids.APPLICATION_CONTEXT
    protocol_version: int = 1
    pdu_type: PDUType = field(default=PDUType.ASSOCIATE_AC, init=False, repr=False)


@frozen
class AssociateRJ:
    """A-ASSOCIATE-RJ (PS3.8 §9.3.4): result 1 permanent / 2 transient, source, reason."""

    result: int
    source: int
    reason: int
    pdu_type: PDUType = field(default=PDUType.ASSOCIATE_RJ, init=False, repr=False)


@frozen
class PresentationDataValue:
    """One PDV item (PS3.8 §9.3.5.1, Annex E.2). `data` is the message fragment."""

    context_id: int
    is_command: bool
    is_last: bool
    data: bytes | memoryview


@frozen
class PDataTF:
    """P-DATA-TF (PS3.8 §9.3.5): one or more PDVs."""

    pdvs: tuple[PresentationDataValue, ...]
    pdu_type: PDUType = field(default=PDUType.P_DATA_TF, init=False, repr=False)


@frozen
class ReleaseRQ:
    pdu_type: PDUType = field(default=PDUType.RELEASE_RQ, init=False, repr=False)


@frozen
class ReleaseRP:
    pdu_type: PDUType = field(default=PDUType.RELEASE_RP, init=False, repr=False)


@frozen
class AbortPDU:
    """A-ABORT (PS3.8 §9.3.8): source 0 service user, 2 service provider."""

    source: int = 0
    reason: int = 0
    pdu_type: PDUType = field(default=PDUType.ABORT, init=False, repr=False)


PDU = AssociateRQ | AssociateAC | AssociateRJ | PDataTF | ReleaseRQ | ReleaseRP | AbortPDU
