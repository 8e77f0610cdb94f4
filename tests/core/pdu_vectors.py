"""Hand-written PDU byte vectors, from the layouts of PS3.8 §9.3 and PS3.7 D.3.3.

Every byte is written here by hand with a comment that decodes it; none comes from our
encoder. Length fields are wrapped in `Len(...)` so that the tests can find and corrupt them;
`Len` is just `bytes` and changes nothing in the vector.

- ROUND_TRIP: encode(value) == data and decode(data) == value.
- LENIENT: decode(data) == value only (what a tolerant receiver must accept).
- MALFORMED: decode must raise RemoteProtocolError naming `field`, with `abort_reason`.
"""

from __future__ import annotations

from dataclasses import dataclass

from netdicom.core.errors import AbortReason
from netdicom.core.pdu.types import (
    PDU,
    AbortPDU,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    AsyncOpsWindow,
    ContextResult,
    PDataTF,
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


class Len(bytes):
    """Marks a length field inside a vector (the corruption tests target these)."""


@dataclass(frozen=True)
class Vector:
    name: str
    value: PDU
    data: bytes  # the whole PDU, 6-byte header included
    length_fields: tuple[tuple[int, int], ...]  # (offset in data, width) of every length field

    @property
    def pdu_type(self) -> int:
        return self.data[0]

    @property
    def body(self) -> bytes:
        return self.data[6:]


def vector(name: str, value: PDU, *segments: bytes) -> Vector:
    fields = []
    offset = 0
    for seg in segments:
        if isinstance(seg, Len):
            fields.append((offset, len(seg)))
        offset += len(seg)
    return Vector(name, value, b"".join(segments), tuple(fields))


@dataclass(frozen=True)
class Malformed:
    name: str
    pdu_type: int
    body: bytes  # the bytes after the 6-byte header
    field: str
    abort_reason: AbortReason


# UID texts used below, with their lengths (bytes) for the length fields.
APP_CONTEXT = b"1.2.840.10008.3.1.1.1"  # 21 = 0x15
VERIFICATION = b"1.2.840.10008.1.1"  # 17 = 0x11
IMPLICIT_LE = b"1.2.840.10008.1.2"  # 17 = 0x11
EXPLICIT_LE = b"1.2.840.10008.1.2.1"  # 19 = 0x13
CT_IMAGE = b"1.2.840.10008.5.1.4.1.1.2"  # 25 = 0x19
ENHANCED_CT = b"1.2.840.10008.5.1.4.1.1.2.1"  # 27 = 0x1B
STUDY_ROOT_FIND = b"1.2.840.10008.5.1.4.1.2.2.1"  # 27 = 0x1B
STORAGE_SERVICE = b"1.2.840.10008.4.2"  # 17 = 0x11
IMPL_UID = b"1.2.3.4"  # 7

# Bytes 7..74 of A-ASSOCIATE-RQ/AC (PS3.8 Table 9-11): 68 bytes before the variable items.
FIXED_ANY_ECHO = b"".join(
    (
        b"\x00\x01",  # protocol version: bit 0 set
        b"\x00\x00",  # reserved
        b"ANY-SCP         ",  # called AE title, 7 chars + 9 spaces = 16
        b"ECHOSCU         ",  # calling AE title, 7 chars + 9 spaces = 16
        bytes(32),  # reserved
    )
)
APP_CONTEXT_ITEM = (b"\x10\x00", Len(b"\x00\x15"), APP_CONTEXT)  # item 0x10, length 21


# --- A-ASSOCIATE-RQ with two presentation contexts and every RQ user-information sub-item ---

FULL_RQ = vector(
    "A-ASSOCIATE-RQ, two contexts, all sub-items",
    AssociateRQ(
        called_ae_title="ANY-SCP",
        calling_ae_title="ECHOSCU",
        presentation_contexts=(
            PresentationContextRQ(1, VERIFICATION.decode(), (IMPLICIT_LE.decode(),)),
            PresentationContextRQ(
                3, CT_IMAGE.decode(), (IMPLICIT_LE.decode(), EXPLICIT_LE.decode())
            ),
        ),
        user_information=UserInformation(
            max_length=16384,
            implementation_class_uid="1.2.3.4",
            implementation_version_name="TEST_1",
            async_ops_window=AsyncOpsWindow(max_invoked=5, max_performed=1),
            role_selections=(RoleSelection(CT_IMAGE.decode(), scu_role=False, scp_role=True),),
            extended_negotiations=(
                SOPClassExtendedNegotiation(STUDY_ROOT_FIND.decode(), b"\x01\x01\x00"),
            ),
            common_extended_negotiations=(
                SOPClassCommonExtendedNegotiation(
                    CT_IMAGE.decode(), STORAGE_SERVICE.decode(), (ENHANCED_CT.decode(),)
                ),
            ),
            user_identity_rq=UserIdentityRQ(
                UserIdentityType.USERNAME_AND_PASSCODE, True, b"user", b"secret"
            ),
        ),
    ),
    b"\x01\x00",  # PDU type 0x01, reserved
    Len(b"\x00\x00\x01\xb3"),  # PDU length 435 = 68 fixed + 25 + 50 + 81 + 211
    FIXED_ANY_ECHO,
    *APP_CONTEXT_ITEM,  # 4 + 21 = 25
    # presentation context 1: 4 + 4 + (4 + 17) + (4 + 17) = 50
    b"\x20\x00",  # item 0x20, reserved
    Len(b"\x00\x2e"),  # item length 46
    b"\x01\x00\x00\x00",  # context ID 1, three reserved bytes
    b"\x30\x00",  # abstract syntax sub-item
    Len(b"\x00\x11"),  # length 17
    VERIFICATION,
    b"\x40\x00",  # transfer syntax sub-item
    Len(b"\x00\x11"),  # length 17
    IMPLICIT_LE,
    # presentation context 3: 4 + 4 + (4 + 25) + (4 + 17) + (4 + 19) = 81
    b"\x20\x00",
    Len(b"\x00\x4d"),  # item length 77
    b"\x03\x00\x00\x00",  # context ID 3
    b"\x30\x00",
    Len(b"\x00\x19"),  # length 25
    CT_IMAGE,
    b"\x40\x00",
    Len(b"\x00\x11"),  # 17
    IMPLICIT_LE,
    b"\x40\x00",
    Len(b"\x00\x13"),  # 19
    EXPLICIT_LE,
    # user information: 4 + 8 + 11 + 8 + 33 + 10 + 36 + 81 + 20 = 211
    b"\x50\x00",
    Len(b"\x00\xcf"),  # item length 207
    b"\x51\x00",  # maximum length
    Len(b"\x00\x04"),
    b"\x00\x00\x40\x00",  # 16384
    b"\x52\x00",  # implementation class UID
    Len(b"\x00\x07"),
    IMPL_UID,
    b"\x53\x00",  # asynchronous operations window
    Len(b"\x00\x04"),
    b"\x00\x05",  # max operations invoked 5
    b"\x00\x01",  # max operations performed 1
    b"\x54\x00",  # role selection: 4 + 2 + 25 + 2 = 33
    Len(b"\x00\x1d"),  # 29
    Len(b"\x00\x19"),  # UID length 25
    CT_IMAGE,
    b"\x00",  # SCU role: not proposed
    b"\x01",  # SCP role: proposed
    b"\x55\x00",  # implementation version name
    Len(b"\x00\x06"),
    b"TEST_1",
    b"\x56\x00",  # SOP class extended negotiation: 4 + 2 + 27 + 3 = 36
    Len(b"\x00\x20"),  # 32
    Len(b"\x00\x1b"),  # UID length 27
    STUDY_ROOT_FIND,
    b"\x01\x01\x00",  # service class application information (opaque here)
    b"\x57\x00",  # SOP class common extended negotiation, sub-item version 0: 4 + 77 = 81
    Len(b"\x00\x4d"),  # 77 = 2 + 25 + 2 + 17 + 2 + 29
    Len(b"\x00\x19"),  # SOP class UID length 25
    CT_IMAGE,
    Len(b"\x00\x11"),  # service class UID length 17
    STORAGE_SERVICE,
    Len(b"\x00\x1d"),  # related general SOP class identification length 29
    Len(b"\x00\x1b"),  # related UID length 27
    ENHANCED_CT,
    b"\x58\x00",  # user identity RQ: 4 + 16 = 20
    Len(b"\x00\x10"),  # 16 = 1 + 1 + 2 + 4 + 2 + 6
    b"\x02",  # type 2: username and passcode
    b"\x01",  # positive response requested
    Len(b"\x00\x04"),
    b"user",
    Len(b"\x00\x06"),
    b"secret",
)

# --- A-ASSOCIATE-AC answering three contexts, with the AC-side sub-items (0x59 included) ---

FULL_AC = vector(
    "A-ASSOCIATE-AC, accepted and rejected contexts, all sub-items",
    AssociateAC(
        called_ae_title="ANY-SCP",
        calling_ae_title="ECHOSCU",
        presentation_contexts=(
            PresentationContextAC(1, ContextResult.ACCEPTANCE, IMPLICIT_LE.decode()),
            PresentationContextAC(3, ContextResult.ACCEPTANCE, EXPLICIT_LE.decode()),
            PresentationContextAC(5, ContextResult.TRANSFER_SYNTAXES_NOT_SUPPORTED),
        ),
        user_information=UserInformation(
            max_length=65536,
            implementation_class_uid="1.2.3.4",
            implementation_version_name="TEST_1",
            async_ops_window=AsyncOpsWindow(max_invoked=1, max_performed=1),
            role_selections=(RoleSelection(CT_IMAGE.decode(), scu_role=False, scp_role=True),),
            extended_negotiations=(
                SOPClassExtendedNegotiation(STUDY_ROOT_FIND.decode(), b"\x01\x01\x00"),
            ),
            user_identity_ac=UserIdentityAC(b"tokn"),
        ),
    ),
    b"\x02\x00",  # PDU type 0x02, reserved
    Len(b"\x00\x00\x01\x2e"),  # PDU length 302 = 68 + 25 + 29 + 31 + 29 + 120
    FIXED_ANY_ECHO,  # the AC echoes the RQ's titles
    *APP_CONTEXT_ITEM,
    b"\x21\x00",  # context 1: 4 + 4 + (4 + 17) = 29
    Len(b"\x00\x19"),  # 25
    b"\x01\x00\x00\x00",  # ID 1, reserved, result 0 acceptance, reserved
    b"\x40\x00",
    Len(b"\x00\x11"),  # 17
    IMPLICIT_LE,
    b"\x21\x00",  # context 3: 4 + 4 + (4 + 19) = 31
    Len(b"\x00\x1b"),  # 27
    b"\x03\x00\x00\x00",  # ID 3, acceptance
    b"\x40\x00",
    Len(b"\x00\x13"),  # 19
    EXPLICIT_LE,
    b"\x21\x00",  # context 5: 29
    Len(b"\x00\x19"),  # 25
    b"\x05\x00\x04\x00",  # ID 5, result 4 transfer-syntaxes-not-supported
    b"\x40\x00",  # not significant when rejected; we send the implicit VR LE UID
    Len(b"\x00\x11"),
    IMPLICIT_LE,
    b"\x50\x00",  # user information: 4 + 8 + 11 + 8 + 33 + 10 + 36 + 10 = 120
    Len(b"\x00\x74"),  # 116
    b"\x51\x00",
    Len(b"\x00\x04"),
    b"\x00\x01\x00\x00",  # max length 65536
    b"\x52\x00",
    Len(b"\x00\x07"),
    IMPL_UID,
    b"\x53\x00",
    Len(b"\x00\x04"),
    b"\x00\x01\x00\x01",  # window 1 / 1
    b"\x54\x00",
    Len(b"\x00\x1d"),
    Len(b"\x00\x19"),
    CT_IMAGE,
    b"\x00\x01",  # SCU role rejected, SCP role accepted
    b"\x55\x00",
    Len(b"\x00\x06"),
    b"TEST_1",
    b"\x56\x00",
    Len(b"\x00\x20"),
    Len(b"\x00\x1b"),
    STUDY_ROOT_FIND,
    b"\x01\x01\x00",
    b"\x59\x00",  # user identity AC: 4 + 2 + 4 = 10
    Len(b"\x00\x06"),
    Len(b"\x00\x04"),  # server response length
    b"tokn",
)

MINIMAL_RQ = vector(
    "A-ASSOCIATE-RQ, one context, mandatory sub-items only",
    AssociateRQ(
        called_ae_title="STORESCP",
        calling_ae_title="STORESCU",
        presentation_contexts=(
            PresentationContextRQ(1, VERIFICATION.decode(), (IMPLICIT_LE.decode(),)),
        ),
        user_information=UserInformation(
            max_length=0, implementation_class_uid="1.2.3.4", implementation_version_name=None
        ),
    ),
    b"\x01\x00",
    Len(b"\x00\x00\x00\xa6"),  # 166 = 68 + 25 + 50 + 23
    b"\x00\x01\x00\x00",  # protocol version 1, reserved
    b"STORESCP        ",  # 8 + 8 spaces
    b"STORESCU        ",
    bytes(32),
    *APP_CONTEXT_ITEM,
    b"\x20\x00",
    Len(b"\x00\x2e"),
    b"\x01\x00\x00\x00",
    b"\x30\x00",
    Len(b"\x00\x11"),
    VERIFICATION,
    b"\x40\x00",
    Len(b"\x00\x11"),
    IMPLICIT_LE,
    b"\x50\x00",  # 4 + 8 + 11 = 23
    Len(b"\x00\x13"),  # 19
    b"\x51\x00",
    Len(b"\x00\x04"),
    b"\x00\x00\x00\x00",  # max length 0: no limit
    b"\x52\x00",
    Len(b"\x00\x07"),
    IMPL_UID,
)

ASSOCIATE_RJ = vector(
    "A-ASSOCIATE-RJ",
    AssociateRJ(result=1, source=1, reason=7),
    b"\x03\x00",
    Len(b"\x00\x00\x00\x04"),
    b"\x00",  # reserved
    b"\x01",  # result 1: rejected-permanent
    b"\x01",  # source 1: service-user
    b"\x07",  # reason 7: called-AE-title-not-recognized
)

PDATA_COMMAND = vector(
    "P-DATA-TF, one command PDV",
    PDataTF((PresentationDataValue(1, True, True, b"\x00\x00\x00\x00\x04\x00\x00\x00\x38\x00"),)),
    b"\x04\x00",
    Len(b"\x00\x00\x00\x10"),  # 16 = 4 + 12
    Len(b"\x00\x00\x00\x0c"),  # PDV item length 12 = 2 + 10
    b"\x01",  # presentation context ID 1
    b"\x03",  # message control header: command, last fragment
    b"\x00\x00\x00\x00\x04\x00\x00\x00\x38\x00",  # 10 bytes of fragment
)

PDATA_TWO_PDVS = vector(
    "P-DATA-TF, two data-set PDVs",
    PDataTF(
        (
            PresentationDataValue(3, False, False, b"\x08\x00\x16\x00"),
            PresentationDataValue(3, False, True, b"\xab\xcd"),
        )
    ),
    b"\x04\x00",
    Len(b"\x00\x00\x00\x12"),  # 18 = (4 + 6) + (4 + 4)
    Len(b"\x00\x00\x00\x06"),  # 6 = 2 + 4
    b"\x03\x00",  # context 3, data set, more to come
    b"\x08\x00\x16\x00",
    Len(b"\x00\x00\x00\x04"),  # 4 = 2 + 2
    b"\x03\x02",  # context 3, data set, last fragment
    b"\xab\xcd",
)

RELEASE_RQ = vector(
    "A-RELEASE-RQ",
    ReleaseRQ(),
    b"\x05\x00",
    Len(b"\x00\x00\x00\x04"),
    b"\x00\x00\x00\x00",  # reserved
)

RELEASE_RP = vector(
    "A-RELEASE-RP",
    ReleaseRP(),
    b"\x06\x00",
    Len(b"\x00\x00\x00\x04"),
    b"\x00\x00\x00\x00",
)

ABORT_PROVIDER = vector(
    "A-ABORT from the provider",
    AbortPDU(source=2, reason=6),
    b"\x07\x00",
    Len(b"\x00\x00\x00\x04"),
    b"\x00\x00",  # reserved
    b"\x02",  # source 2: service-provider
    b"\x06",  # reason 6: invalid-PDU-parameter-value
)

ABORT_USER = vector(
    "A-ABORT from the user",
    AbortPDU(source=0, reason=0),
    b"\x07\x00",
    Len(b"\x00\x00\x00\x04"),
    b"\x00\x00\x00\x00",  # reserved, reserved, source 0, reason 0
)

ROUND_TRIP: tuple[Vector, ...] = (
    FULL_RQ,
    FULL_AC,
    MINIMAL_RQ,
    ASSOCIATE_RJ,
    PDATA_COMMAND,
    PDATA_TWO_PDVS,
    RELEASE_RQ,
    RELEASE_RP,
    ABORT_PROVIDER,
    ABORT_USER,
)


# --- what a tolerant receiver accepts -------------------------------------------------------

_MINIMAL_INFO = UserInformation(
    max_length=0, implementation_class_uid="1.2.3.4", implementation_version_name=None
)

LENIENT: tuple[Vector, ...] = (
    vector(
        "protocol version 3, NUL-padded and space-led AE titles, reserved bytes set",
        AssociateRQ(
            called_ae_title="ANY-SCP",
            calling_ae_title="ECHOSCU",
            presentation_contexts=(
                PresentationContextRQ(1, VERIFICATION.decode(), (IMPLICIT_LE.decode(),)),
            ),
            user_information=_MINIMAL_INFO,
            protocol_version=3,
        ),
        b"\x01\xff",  # reserved byte set: not tested
        Len(b"\x00\x00\x00\xa6"),
        b"\x00\x03",  # protocol version 3: only bit 0 counts
        b"\xff\xff",  # reserved: not tested
        b"ANY-SCP\x00\x00\x00\x00\x00\x00\x00\x00\x00",  # NUL padding
        b"  ECHOSCU       ",  # leading spaces are not significant
        b"\xff" * 32,  # reserved: not tested
        *APP_CONTEXT_ITEM,
        b"\x20\xff",  # reserved byte of the item header set
        Len(b"\x00\x2e"),
        b"\x01\xff\xff\xff",  # context ID 1, reserved bytes set
        b"\x30\x00",
        Len(b"\x00\x11"),
        VERIFICATION,
        b"\x40\x00",
        Len(b"\x00\x11"),
        IMPLICIT_LE,
        b"\x50\x00",
        Len(b"\x00\x13"),
        b"\x51\x00",
        Len(b"\x00\x04"),
        b"\x00\x00\x00\x00",
        b"\x52\x00",
        Len(b"\x00\x07"),
        IMPL_UID,
    ),
    vector(
        "UIDs with trailing NUL/space, unknown items, sub-items out of order",
        AssociateRQ(
            called_ae_title="ANY-SCP",
            calling_ae_title="ECHOSCU",
            presentation_contexts=(
                PresentationContextRQ(1, VERIFICATION.decode(), (IMPLICIT_LE.decode(),)),
            ),
            user_information=UserInformation(
                max_length=16384,
                implementation_class_uid="1.2.3.4",
                implementation_version_name="V",
            ),
        ),
        b"\x01\x00",
        Len(b"\x00\x00\x00\xc0"),  # 192 = 68 + 26 + 6 + 56 + 36
        FIXED_ANY_ECHO,
        b"\x10\x00",
        Len(b"\x00\x16"),  # 22: UID + trailing NUL
        APP_CONTEXT + b"\x00",
        b"\x99\x00",  # unknown item type 0x99: skipped (4 + 2 = 6)
        Len(b"\x00\x02"),
        b"\xde\xad",
        b"\x20\x00",  # context 1: 4 + 4 + (4 + 18) + 4 + (4 + 18) = 56
        Len(b"\x00\x34"),  # 52
        b"\x01\x00\x00\x00",
        b"\x30\x00",
        Len(b"\x00\x12"),  # 18: UID + trailing NUL
        VERIFICATION + b"\x00",
        b"\x77\x00",  # unknown sub-item 0x77 inside the context: skipped
        Len(b"\x00\x00"),
        b"\x40\x00",
        Len(b"\x00\x12"),  # 18: UID + trailing space
        IMPLICIT_LE + b" ",
        b"\x50\x00",  # user information: 4 + 11 + 7 + 8 + 6 = 36
        Len(b"\x00\x20"),  # 32
        b"\x52\x00",  # 0x52 before 0x51: any order is accepted
        Len(b"\x00\x07"),
        IMPL_UID,
        b"\x5f\x00",  # unknown sub-item 0x5F: skipped (4 + 3 = 7)
        Len(b"\x00\x03"),
        b"xyz",
        b"\x51\x00",
        Len(b"\x00\x04"),
        b"\x00\x00\x40\x00",  # 16384
        b"\x55\x00",  # implementation version name "V" padded with a NUL (4 + 2 = 6)
        Len(b"\x00\x02"),
        b"V\x00",
    ),
    vector(
        "user information without max length and implementation class UID",
        AssociateRQ(
            called_ae_title="ANY-SCP",
            calling_ae_title="ECHOSCU",
            presentation_contexts=(
                PresentationContextRQ(1, VERIFICATION.decode(), (IMPLICIT_LE.decode(),)),
            ),
            user_information=UserInformation(
                max_length=0, implementation_class_uid="", implementation_version_name=None
            ),
        ),
        b"\x01\x00",
        Len(b"\x00\x00\x00\x93"),  # 147 = 68 + 25 + 50 + 4
        FIXED_ANY_ECHO,
        *APP_CONTEXT_ITEM,
        b"\x20\x00",
        Len(b"\x00\x2e"),
        b"\x01\x00\x00\x00",
        b"\x30\x00",
        Len(b"\x00\x11"),
        VERIFICATION,
        b"\x40\x00",
        Len(b"\x00\x11"),
        IMPLICIT_LE,
        b"\x50\x00",
        Len(b"\x00\x00"),  # empty user information
    ),
    vector(
        "AC: rejected contexts with a missing or junk transfer syntax, junk AE titles",
        AssociateAC(
            called_ae_title="\ufffdA",
            calling_ae_title="",
            presentation_contexts=(
                PresentationContextAC(1, ContextResult.USER_REJECTION),
                PresentationContextAC(3, ContextResult.NO_REASON, "\ufffd"),
            ),
            user_information=_MINIMAL_INFO,
        ),
        b"\x02\x00",
        Len(b"\x00\x00\x00\x89"),  # 137 = 68 + 25 + 8 + 13 + 23
        b"\x00\x01\x00\x00",
        b"\xe9A" + b" " * 14,  # not ASCII: the AC copy is not tested
        bytes(16),  # all NUL
        bytes(32),
        *APP_CONTEXT_ITEM,
        b"\x21\x00",  # context 1, no sub-item at all: 4 + 4 = 8
        Len(b"\x00\x04"),
        b"\x01\x00\x01\x00",  # result 1: user-rejection
        b"\x21\x00",  # context 3 with a junk 1-byte transfer syntax: 4 + 4 + 5 = 13
        Len(b"\x00\x09"),
        b"\x03\x00\x02\x00",  # result 2: no-reason
        b"\x40\x00",
        Len(b"\x00\x01"),
        b"\xff",
        b"\x50\x00",
        Len(b"\x00\x13"),
        b"\x51\x00",
        Len(b"\x00\x04"),
        b"\x00\x00\x00\x00",
        b"\x52\x00",
        Len(b"\x00\x07"),
        IMPL_UID,
    ),
    vector(
        "user identity without the secondary-field length, unknown identity type",
        AssociateRQ(
            called_ae_title="ANY-SCP",
            calling_ae_title="ECHOSCU",
            presentation_contexts=(
                PresentationContextRQ(1, VERIFICATION.decode(), (IMPLICIT_LE.decode(),)),
            ),
            user_information=UserInformation(
                max_length=0,
                implementation_class_uid="1.2.3.4",
                implementation_version_name=None,
                user_identity_rq=UserIdentityRQ(9, False, b"bob"),
            ),
        ),
        b"\x01\x00",
        Len(b"\x00\x00\x00\xb1"),  # 177 = 68 + 25 + 50 + 34
        FIXED_ANY_ECHO,
        *APP_CONTEXT_ITEM,
        b"\x20\x00",
        Len(b"\x00\x2e"),
        b"\x01\x00\x00\x00",
        b"\x30\x00",
        Len(b"\x00\x11"),
        VERIFICATION,
        b"\x40\x00",
        Len(b"\x00\x11"),
        IMPLICIT_LE,
        b"\x50\x00",  # 4 + 8 + 11 + 11 = 34
        Len(b"\x00\x1e"),  # 30
        b"\x51\x00",
        Len(b"\x00\x04"),
        b"\x00\x00\x00\x00",
        b"\x52\x00",
        Len(b"\x00\x07"),
        IMPL_UID,
        b"\x58\x00",  # 4 + 1 + 1 + 2 + 3 = 11
        Len(b"\x00\x07"),
        b"\x09",  # identity type 9: unknown, kept as an int
        b"\x00",  # no positive response requested
        Len(b"\x00\x03"),
        b"bob",  # and no secondary-field length at all
    ),
    vector(
        "P-DATA-TF with reserved control-header bits set",
        PDataTF((PresentationDataValue(1, True, False, b"\x01\x02"),)),
        b"\x04\x00",
        Len(b"\x00\x00\x00\x08"),  # 8 = 4 + 4
        Len(b"\x00\x00\x00\x04"),
        b"\x01",
        b"\xfd",  # 1111 1101: bits 2-7 ignored, command (bit 0), not last (bit 1 clear)
        b"\x01\x02",
    ),
    vector(
        "A-RELEASE-RQ with 2 extra bytes",
        ReleaseRQ(),
        b"\x05\x00",
        Len(b"\x00\x00\x00\x06"),
        b"\xff\xff\xff\xff\x00\x00",  # reserved bytes set, and extra bytes: ignored
    ),
    vector(
        "A-RELEASE-RP with 1 extra byte",
        ReleaseRP(),
        b"\x06\x00",
        Len(b"\x00\x00\x00\x05"),
        b"\x00\x00\x00\x00\x00",
    ),
    vector(
        "A-ABORT with reserved bytes set and 1 extra byte",
        AbortPDU(source=0, reason=3),
        b"\x07\x00",
        Len(b"\x00\x00\x00\x05"),
        b"\xaa\xbb",  # reserved
        b"\x00",  # source 0
        b"\x03",  # reason (not significant for source 0, passed on as is)
        b"\x00",  # extra
    ),
)


# --- malformed bodies -----------------------------------------------------------------------

_INVALID = AbortReason.INVALID_PDU_PARAMETER_VALUE
_UNEXPECTED = AbortReason.UNEXPECTED_PDU_PARAMETER

_CONTEXT_1 = (  # a valid presentation context item 0x20, 50 bytes
    b"\x20\x00\x00\x2e\x01\x00\x00\x00"
    + b"\x30\x00\x00\x11"
    + VERIFICATION
    + b"\x40\x00\x00\x11"
    + IMPLICIT_LE
)
_USER_INFO = (
    b"\x50\x00\x00\x13" + b"\x51\x00\x00\x04\x00\x00\x00\x00" + b"\x52\x00\x00\x07" + IMPL_UID
)
_APP = b"\x10\x00\x00\x15" + APP_CONTEXT


def _rq(*items: bytes) -> bytes:
    return FIXED_ANY_ECHO + b"".join(items)


MALFORMED: tuple[Malformed, ...] = (
    Malformed(
        "unknown PDU type 0x08", 0x08, b"\x00\x00\x00\x00", "PDU type", AbortReason.UNRECOGNIZED_PDU
    ),
    Malformed("unknown PDU type 0x00", 0x00, b"", "PDU type", AbortReason.UNRECOGNIZED_PDU),
    Malformed(
        "RQ shorter than its fixed part",
        0x01,
        FIXED_ANY_ECHO[:67],
        "A-ASSOCIATE-RQ length",
        _INVALID,
    ),
    Malformed("AC shorter than its fixed part", 0x02, b"", "A-ASSOCIATE-AC length", _INVALID),
    Malformed(
        "RQ without application context",
        0x01,
        _rq(_CONTEXT_1, _USER_INFO),
        "application context item 0x10",
        _UNEXPECTED,
    ),
    Malformed(
        "RQ with two application contexts",
        0x01,
        _rq(_APP, _APP, _CONTEXT_1, _USER_INFO),
        "application context item 0x10",
        _UNEXPECTED,
    ),
    Malformed(
        "RQ without presentation context",
        0x01,
        _rq(_APP, _USER_INFO),
        "presentation context item 0x20",
        _UNEXPECTED,
    ),
    Malformed(
        "RQ without user information",
        0x01,
        _rq(_APP, _CONTEXT_1),
        "user information item 0x50",
        _UNEXPECTED,
    ),
    Malformed(
        "RQ with an AC presentation context",
        0x01,
        _rq(_APP, _CONTEXT_1, b"\x21\x00\x00\x04\x01\x00\x00\x00", _USER_INFO),
        "presentation context item 0x21",
        _UNEXPECTED,
    ),
    Malformed(
        "presentation context overruns the PDU",
        0x01,
        _rq(_APP, b"\x20\x00\x00\x33" + _CONTEXT_1[4:]),  # says 51, has 46
        "presentation context item 0x20 length",
        _INVALID,
    ),
    Malformed(
        "3 stray bytes after the last item",
        0x01,
        _rq(_APP, _CONTEXT_1, _USER_INFO, b"\x99\x00\x00"),
        "A-ASSOCIATE-RQ item header",
        _INVALID,
    ),
    Malformed(
        "presentation context shorter than its ID and reserved bytes",
        0x01,
        _rq(_APP, b"\x20\x00\x00\x02\x01\x00", _USER_INFO),
        "presentation context item 0x20 length",
        _INVALID,
    ),
    Malformed(
        "abstract syntax overruns its presentation context",
        0x01,
        _rq(_APP, b"\x20\x00\x00\x0a\x01\x00\x00\x00\x30\x00\x00\x11\x31\x2e", _USER_INFO),
        "abstract syntax sub-item 0x30 length",
        _INVALID,
    ),
    Malformed(
        "presentation context without abstract syntax",
        0x01,
        _rq(_APP, b"\x20\x00\x00\x19\x01\x00\x00\x00\x40\x00\x00\x11" + IMPLICIT_LE, _USER_INFO),
        "abstract syntax sub-item 0x30",
        _UNEXPECTED,
    ),
    Malformed(
        "presentation context without transfer syntax",
        0x01,
        _rq(_APP, b"\x20\x00\x00\x19\x01\x00\x00\x00\x30\x00\x00\x11" + VERIFICATION, _USER_INFO),
        "transfer syntax sub-item 0x40",
        _UNEXPECTED,
    ),
    Malformed(
        "abstract syntax not ASCII",
        0x01,
        _rq(
            _APP,
            b"\x20\x00\x00\x0e\x01\x00\x00\x00\x30\x00\x00\x01\xc3\x40\x00\x00\x01\x31",
            _USER_INFO,
        ),
        "abstract syntax name",
        _INVALID,
    ),
    Malformed(
        "called AE title not ASCII",
        0x01,
        b"\x00\x01\x00\x00"
        + b"\xc3\xa9"
        + b" " * 14
        + FIXED_ANY_ECHO[20:]
        + _APP
        + _CONTEXT_1
        + _USER_INFO,
        "called AE title",
        _INVALID,
    ),
    Malformed(
        "maximum length sub-item of length 2",
        0x01,
        _rq(_APP, _CONTEXT_1, b"\x50\x00\x00\x06\x51\x00\x00\x02\x40\x00"),
        "maximum length sub-item 0x51 length",
        _INVALID,
    ),
    Malformed(
        "two maximum length sub-items",
        0x01,
        _rq(_APP, _CONTEXT_1, b"\x50\x00\x00\x10" + b"\x51\x00\x00\x04\x00\x00\x40\x00" * 2),
        "maximum length sub-item 0x51",
        _UNEXPECTED,
    ),
    Malformed(
        "sub-item overruns the user information item",
        0x01,
        _rq(_APP, _CONTEXT_1, b"\x50\x00\x00\x08\x52\x00\x00\x07\x31\x2e\x32\x2e"),
        "implementation class UID sub-item 0x52 length",
        _INVALID,
    ),
    Malformed(
        "role selection UID length overruns the sub-item",
        0x01,
        _rq(_APP, _CONTEXT_1, b"\x50\x00\x00\x08\x54\x00\x00\x04\x00\x09\x31\x00"),
        "SCP/SCU role selection sub-item 0x54 UID length",
        _INVALID,
    ),
    Malformed(
        "role selection without its role bytes",
        0x01,
        _rq(_APP, _CONTEXT_1, b"\x50\x00\x00\x08\x54\x00\x00\x04\x00\x01\x31\x00"),
        "SCP/SCU role selection sub-item 0x54 length",
        _INVALID,
    ),
    Malformed(
        "user identity primary field overruns",
        0x01,
        _rq(_APP, _CONTEXT_1, b"\x50\x00\x00\x09\x58\x00\x00\x05\x01\x00\x00\x05\x61"),
        "user identity sub-item 0x58 primary field length",
        _INVALID,
    ),
    Malformed(
        "AC context with unknown result 9",
        0x02,
        _rq(_APP, b"\x21\x00\x00\x04\x01\x00\x09\x00", _USER_INFO),
        "presentation context item 0x21 result/reason",
        _INVALID,
    ),
    Malformed(
        "accepted AC context without transfer syntax",
        0x02,
        _rq(_APP, b"\x21\x00\x00\x04\x01\x00\x00\x00", _USER_INFO),
        "transfer syntax sub-item 0x40",
        _UNEXPECTED,
    ),
    Malformed("RJ of 3 bytes", 0x03, b"\x00\x01\x01", "A-ASSOCIATE-RJ length", _INVALID),
    Malformed("RJ of 5 bytes", 0x03, b"\x00\x01\x01\x01\x00", "A-ASSOCIATE-RJ length", _INVALID),
    Malformed("RELEASE-RQ of 0 bytes", 0x05, b"", "A-RELEASE-RQ length", _INVALID),
    Malformed("RELEASE-RP of 3 bytes", 0x06, b"\x00\x00\x00", "A-RELEASE-RP length", _INVALID),
    Malformed("ABORT of 2 bytes", 0x07, b"\x00\x00", "A-ABORT length", _INVALID),
    Malformed("P-DATA-TF without PDV", 0x04, b"", "PDV item", _UNEXPECTED),
    Malformed("PDV item length 1", 0x04, b"\x00\x00\x00\x01\x01", "PDV item length", _INVALID),
    Malformed("PDV item length 0", 0x04, b"\x00\x00\x00\x00", "PDV item length", _INVALID),
    Malformed(
        "PDV overruns the P-DATA-TF",
        0x04,
        b"\x00\x00\x00\x05\x01\x03\xaa",
        "PDV item length",
        _INVALID,
    ),
    Malformed(
        "3 stray bytes after a PDV",
        0x04,
        b"\x00\x00\x00\x03\x01\x03\xaa\x00\x00\x00",
        "PDV item length",
        _INVALID,
    ),
)
