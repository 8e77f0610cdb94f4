"""PDU codec: hand-written vectors both ways, leniency, malformed input, round trips."""

from __future__ import annotations

import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netdicom.core.errors import AbortReason, LocalProtocolError, RemoteProtocolError
from netdicom.core.pdu.codec import decode_pdu, encode_pdata, encode_pdata_header, encode_pdu
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

from .pdu_vectors import (
    FULL_RQ,
    LENIENT,
    MALFORMED,
    PDATA_COMMAND,
    PDATA_TWO_PDVS,
    ROUND_TRIP,
    Malformed,
    Vector,
)


def _ids(vec: Vector) -> str:
    return vec.name


# --- the vectors, both ways -------------------------------------------------------------------


@pytest.mark.parametrize("vec", ROUND_TRIP, ids=_ids)
def test_encode_matches_vector(vec: Vector) -> None:
    assert encode_pdu(vec.value) == vec.data


@pytest.mark.parametrize("vec", ROUND_TRIP + LENIENT, ids=_ids)
def test_decode_matches_vector(vec: Vector) -> None:
    assert decode_pdu(vec.pdu_type, vec.body) == vec.value


@pytest.mark.parametrize("vec", ROUND_TRIP + LENIENT, ids=_ids)
def test_decode_accepts_memoryview_and_bytearray(vec: Vector) -> None:
    assert decode_pdu(vec.pdu_type, memoryview(vec.body)) == vec.value
    assert decode_pdu(vec.pdu_type, bytearray(vec.body)) == vec.value


def test_vectors_cover_every_item_and_sub_item() -> None:
    seen: set[int] = set()
    for vec in ROUND_TRIP:
        value = vec.value
        if isinstance(value, AssociateRQ | AssociateAC):
            seen.add(0x10)
            seen.update(
                0x20 if isinstance(c, PresentationContextRQ) else 0x21
                for c in value.presentation_contexts
            )
            info = value.user_information
            seen.update({0x30, 0x40, 0x50, 0x51, 0x52})
            seen.update(
                t
                for t, present in (
                    (0x53, info.async_ops_window),
                    (0x54, info.role_selections),
                    (0x55, info.implementation_version_name),
                    (0x56, info.extended_negotiations),
                    (0x57, info.common_extended_negotiations),
                    (0x58, info.user_identity_rq),
                    (0x59, info.user_identity_ac),
                )
                if present
            )
    assert seen == {0x10, 0x20, 0x21, 0x30, 0x40, *range(0x50, 0x5A)}
    assert {v.pdu_type for v in ROUND_TRIP} == set(range(1, 8))


def test_full_rq_details() -> None:
    pdu = decode_pdu(1, FULL_RQ.body)
    assert isinstance(pdu, AssociateRQ)
    assert [c.context_id for c in pdu.presentation_contexts] == [1, 3]
    role = pdu.user_information.role_selections[0]
    # SCU byte first (0), SCP byte second (1): PS3.7 D.3.3.4.
    assert (role.scu_role, role.scp_role) == (False, True)
    ident = pdu.user_information.user_identity_rq
    assert ident is not None and ident.identity_type is UserIdentityType.USERNAME_AND_PASSCODE


def test_pdv_data_aliases_the_body() -> None:
    body = bytearray(PDATA_COMMAND.body)
    pdu = decode_pdu(4, body)
    assert isinstance(pdu, PDataTF)
    data = pdu.pdvs[0].data
    assert isinstance(data, memoryview)
    body[-1] = 0x99  # a view, not a copy: the change shows through
    assert data[-1] == 0x99


def test_user_information_sub_items_are_encoded_in_ascending_order() -> None:
    data = encode_pdu(FULL_RQ.value)
    start = data.index(b"\x50\x00") + 4
    types = []
    pos = start
    while pos < len(data):
        types.append(data[pos])
        pos += 4 + struct.unpack_from(">H", data, pos + 2)[0]
    assert types == sorted(types)
    assert types == [0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58]


# --- P-DATA header for the zero-copy send path ---------------------------------------------------


def test_encode_pdata_header_by_hand() -> None:
    header = encode_pdata_header(5, is_command=False, is_last=True, fragment_length=0x1000)
    assert header == (
        b"\x04\x00"  # P-DATA-TF, reserved
        b"\x00\x00\x10\x06"  # PDU length = 4 + 2 + 4096
        b"\x00\x00\x10\x02"  # PDV item length = 2 + 4096
        b"\x05"  # context ID 5
        b"\x02"  # data set, last fragment
    )


@pytest.mark.parametrize("is_command", [False, True])
@pytest.mark.parametrize("is_last", [False, True])
def test_encode_pdata_header_plus_fragment_equals_encode_pdu(
    is_command: bool, is_last: bool
) -> None:
    fragment = bytes(range(37))
    pdu = PDataTF((PresentationDataValue(7, is_command, is_last, fragment),))
    header = encode_pdata_header(7, is_command, is_last, len(fragment))
    assert header + fragment == encode_pdu(pdu) == encode_pdata(pdu)
    assert decode_pdu(4, (header + fragment)[6:]) == pdu


@pytest.mark.parametrize(
    ("context_id", "length"), [(256, 1), (-1, 1), (1, -1), (1, 0xFFFFFFFF - 5)]
)
def test_encode_pdata_header_rejects_out_of_range(context_id: int, length: int) -> None:
    with pytest.raises(LocalProtocolError):
        encode_pdata_header(context_id, True, True, length)


def test_encode_pdata_accepts_memoryview_fragments() -> None:
    big = bytearray(b"\x01\x02\x03\x04")
    pdu = PDataTF((PresentationDataValue(1, False, True, memoryview(big)[1:3]),))
    # 00000008 length, 00000004 PDV length, ctx 1, control 02, fragment 02 03
    assert encode_pdu(pdu) == b"\x04\x00\x00\x00\x00\x08\x00\x00\x00\x04\x01\x02\x02\x03"


# --- encoder refuses what cannot be sent --------------------------------------------------------

_INFO = UserInformation(max_length=0)
_CTX = (PresentationContextRQ(1, "1.2.840.10008.1.1", ("1.2.840.10008.1.2",)),)


@pytest.mark.parametrize(
    "pdu",
    [
        AssociateRQ("A" * 17, "B", _CTX, _INFO),  # over 16 characters
        AssociateRQ("ÄRZTE", "B", _CTX, _INFO),  # not ASCII
        AssociateRQ("A", "B" * 17, _CTX, _INFO),
        AssociateRQ("   ", "B", _CTX, _INFO),  # all spaces shall not be used (Table 9-11)
        AssociateRQ("A", "B", (), _INFO),  # no presentation context
        AssociateRQ("A", "B", (PresentationContextRQ(1, "1.2", ()),), _INFO),  # no TS
        AssociateRQ("A", "B", (PresentationContextRQ(256, "1.2", ("1",)),), _INFO),
        AssociateRQ("A", "B", (PresentationContextRQ(1, "1.2é", ("1",)),), _INFO),
        AssociateRQ("A", "B", _CTX, UserInformation(max_length=-1)),
        AssociateRQ("A", "B", _CTX, UserInformation(max_length=1 << 32)),
        AssociateRQ("A", "B", _CTX, UserInformation(0, implementation_version_name="X" * 17)),
        AssociateRQ("A", "B", _CTX, UserInformation(0, implementation_version_name="")),
        AssociateRQ(
            "A", "B", _CTX, UserInformation(0, async_ops_window=AsyncOpsWindow(1 << 16, 1))
        ),
        AssociateRQ(
            "A",
            "B",
            _CTX,
            UserInformation(0, user_identity_rq=UserIdentityRQ(1, False, b"x" * 70000)),
        ),
        AssociateRQ("A", "B", _CTX, _INFO, protocol_version=1 << 16),
        AssociateAC("A", "B", (PresentationContextAC(1, ContextResult.ACCEPTANCE, "1.2é"),), _INFO),
        AssociateRJ(256, 1, 1),
        AbortPDU(source=-1),
        PDataTF(()),
        PDataTF((PresentationDataValue(300, True, True, b"x"),)),
    ],
)
def test_encode_rejects_invalid_values(pdu: PDU) -> None:
    with pytest.raises(LocalProtocolError):
        encode_pdu(pdu)


def test_ac_may_echo_empty_ae_titles() -> None:
    ac = AssociateAC("", "", (PresentationContextAC(1, ContextResult.ACCEPTANCE),), _INFO)
    data = encode_pdu(ac)
    assert data[10:42] == b" " * 32
    assert decode_pdu(2, data[6:]) == ac


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (b"  PADDED\x00\x00", "PADDED"),  # leading spaces and trailing NULs are padding
        (b"\x00FUZZ", "\x00FUZZ"),  # a leading NUL is kept for the acceptor to refuse
    ],
)
def test_decoded_ae_title_padding(field: bytes, expected: str) -> None:
    data = encode_pdu(
        AssociateAC("X", "Y", (PresentationContextAC(1, ContextResult.ACCEPTANCE),), _INFO)
    )
    data = data[:10] + field.ljust(16, b" ") + data[26:]
    ac = decode_pdu(2, data[6:])
    assert isinstance(ac, AssociateAC)
    assert ac.called_ae_title == expected


# --- malformed input ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", MALFORMED, ids=lambda m: m.name)
def test_malformed_is_rejected_with_field_and_reason(case: Malformed) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        decode_pdu(case.pdu_type, case.body)
    assert info.value.field == case.field
    assert info.value.abort_reason == case.abort_reason


def _decode_or_protocol_error(pdu_type: int, body: bytes) -> PDU | None:
    """Decode; a RemoteProtocolError is a fine answer, any other exception fails the test."""
    try:
        return decode_pdu(pdu_type, body)
    except RemoteProtocolError as exc:
        assert exc.field
        assert isinstance(exc.abort_reason, AbortReason)
        return None


def _valid_prefixes(vec: Vector) -> set[int]:
    """Body lengths, shorter than the whole, at which the vector is still a complete PDU."""
    if vec is PDATA_TWO_PDVS:
        return {10}  # the first PDV alone (4 + 6 bytes)
    return set()


@pytest.mark.parametrize("vec", ROUND_TRIP + LENIENT, ids=_ids)
def test_every_truncation_is_rejected(vec: Vector) -> None:
    body = vec.body
    # Release and abort tolerate extra bytes, so their prefixes of >= 4 bytes are fine.
    lenient_tail = vec.pdu_type in (5, 6, 7)
    for n in range(len(body)):
        if n in _valid_prefixes(vec) or (lenient_tail and n >= 4):
            assert isinstance(decode_pdu(vec.pdu_type, body[:n]), type(vec.value))
            continue
        with pytest.raises(RemoteProtocolError):
            decode_pdu(vec.pdu_type, body[:n])


@pytest.mark.parametrize("vec", ROUND_TRIP + LENIENT, ids=_ids)
def test_every_corrupted_length_field_is_handled(vec: Vector) -> None:
    for offset, width in vec.length_fields:
        if offset == 2:
            continue  # the PDU length is the framer's business (tested there)
        original = int.from_bytes(vec.data[offset : offset + width], "big")
        top = (1 << (8 * width)) - 1
        for value in {original + 1, original - 1, 0, top}:
            if not 0 <= value <= top:
                continue
            data = bytearray(vec.data)
            data[offset : offset + width] = value.to_bytes(width, "big")
            result = _decode_or_protocol_error(vec.pdu_type, bytes(data[6:]))
            if value == top:
                # Larger than anything in the vector: it can only overrun its parent.
                assert result is None, (offset, value)


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xff\xff\xf0\x01\x03" + bytes(10),  # PDV declaring ~4 GiB, 16 bytes present
        FULL_RQ.body[:68] + b"\x50\x00\xff\xff\x51\x00",  # user information declaring 65535
    ],
)
def test_declared_lengths_are_not_allocated(body: bytes) -> None:
    tracemalloc.start()
    try:
        for pdu_type in (1, 4):
            with pytest.raises(RemoteProtocolError):
                decode_pdu(pdu_type, body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024


# --- leniency spot checks ---------------------------------------------------------------------


def test_protocol_version_raw_value_is_kept() -> None:
    pdu = decode_pdu(1, LENIENT[0].body)
    assert isinstance(pdu, AssociateRQ)
    assert pdu.protocol_version == 3  # the state machine tests bit 0


def test_unknown_pdv_bits_are_masked() -> None:
    # 00000004 PDV length, ctx 1, control 0xFE: bits 2-7 set, data set (bit 0 clear), last
    pdu = decode_pdu(4, b"\x00\x00\x00\x04\x01\xfe\x00\x00")
    assert pdu == PDataTF((PresentationDataValue(1, False, True, b"\x00\x00"),))


def test_unknown_user_identity_type_is_kept_as_int() -> None:
    pdu = decode_pdu(1, LENIENT[4].body)
    assert isinstance(pdu, AssociateRQ)
    ident = pdu.user_information.user_identity_rq
    assert ident is not None
    assert ident.identity_type == 9 and not isinstance(ident.identity_type, UserIdentityType)


# --- hypothesis: round trips ----------------------------------------------------------------

_uid = st.lists(st.integers(0, 99999), min_size=2, max_size=8).map(
    lambda parts: ".".join(map(str, parts))
)
_ae = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=16
)
_ae_with_inner_space = (
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=16)
    .map(str.strip)
    .filter(bool)
)
_byte = st.integers(0, 255)
_u16 = st.integers(0, 0xFFFF)
_blob = st.binary(max_size=40)
_version_name = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=16
)

_user_info = st.builds(
    UserInformation,
    max_length=st.integers(0, 0xFFFFFFFF),
    implementation_class_uid=_uid,
    implementation_version_name=st.none() | _version_name,
    async_ops_window=st.none() | st.builds(AsyncOpsWindow, _u16, _u16),
    role_selections=st.lists(
        st.builds(RoleSelection, _uid, st.booleans(), st.booleans()), max_size=3
    ).map(tuple),
    extended_negotiations=st.lists(
        st.builds(SOPClassExtendedNegotiation, _uid, _blob), max_size=2
    ).map(tuple),
    common_extended_negotiations=st.lists(
        st.builds(
            SOPClassCommonExtendedNegotiation, _uid, _uid, st.lists(_uid, max_size=3).map(tuple)
        ),
        max_size=2,
    ).map(tuple),
    user_identity_rq=st.none()
    | st.builds(
        UserIdentityRQ,
        st.sampled_from(list(UserIdentityType)) | st.integers(6, 255),
        st.booleans(),
        _blob,
        _blob,
    ),
    user_identity_ac=st.none() | st.builds(UserIdentityAC, _blob),
)

_rq = st.builds(
    AssociateRQ,
    called_ae_title=_ae | _ae_with_inner_space,
    calling_ae_title=_ae,
    presentation_contexts=st.lists(
        st.builds(
            PresentationContextRQ, _byte, _uid, st.lists(_uid, min_size=1, max_size=4).map(tuple)
        ),
        min_size=1,
        max_size=5,
    ).map(tuple),
    user_information=_user_info,
    application_context_name=_uid,
    protocol_version=_u16,
)

_ac = st.builds(
    AssociateAC,
    called_ae_title=st.just("") | _ae,
    calling_ae_title=st.just("") | _ae,
    presentation_contexts=st.lists(
        st.builds(PresentationContextAC, _byte, st.sampled_from(list(ContextResult)), _uid),
        min_size=1,
        max_size=5,
    ).map(tuple),
    user_information=_user_info,
    application_context_name=_uid,
    protocol_version=_u16,
)

_pdata = st.builds(
    PDataTF,
    st.lists(
        st.builds(
            PresentationDataValue, _byte, st.booleans(), st.booleans(), st.binary(max_size=64)
        ),
        min_size=1,
        max_size=4,
    ).map(tuple),
)

ANY_PDU = st.one_of(
    _rq,
    _ac,
    _pdata,
    st.builds(AssociateRJ, _byte, _byte, _byte),
    st.builds(ReleaseRQ),
    st.builds(ReleaseRP),
    st.builds(AbortPDU, _byte, _byte),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_PDU)
def test_round_trip(pdu: PDU) -> None:
    data = encode_pdu(pdu)
    assert struct.unpack_from(">I", data, 2)[0] == len(data) - 6
    assert decode_pdu(data[0], data[6:]) == pdu


# --- hypothesis: garbage and mutations give a PDU or RemoteProtocolError, nothing else ----------


@settings(max_examples=400, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=300))
def test_random_bytes_never_escape(pdu_type: int, body: bytes) -> None:
    _decode_or_protocol_error(pdu_type, body)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 7), st.binary(min_size=68, max_size=68), st.binary(max_size=200))
def test_random_items_after_a_fixed_part_never_escape(
    pdu_type: int, fixed: bytes, items: bytes
) -> None:
    _decode_or_protocol_error(pdu_type, fixed + items)


_mutation = st.tuples(st.sampled_from(["set", "insert", "delete"]), st.integers(0, 10_000), _byte)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(ROUND_TRIP + LENIENT), st.lists(_mutation, min_size=1, max_size=6))
def test_mutated_vectors_never_escape(vec: Vector, mutations: list[tuple[str, int, int]]) -> None:
    body = bytearray(vec.body)
    for op, where, value in mutations:
        pos = where % (len(body) + 1)
        if op == "insert":
            body.insert(pos, value)
        elif body and pos < len(body):
            if op == "set":
                body[pos] = value
            else:
                del body[pos]
    _decode_or_protocol_error(vec.pdu_type, bytes(body))
