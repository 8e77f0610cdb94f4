"""User information item 0x50 and its sub-items 0x51..0x59 (PS3.8 Annex D, PS3.7 D.3.3)."""

from __future__ import annotations

from netdicom.core.errors import LocalProtocolError
from netdicom.core.pdu import _wire as w
from netdicom.core.pdu.types import (
    AsyncOpsWindow,
    RoleSelection,
    SOPClassCommonExtendedNegotiation,
    SOPClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserIdentityType,
    UserInformation,
)

USER_INFORMATION = 0x50
_MAX_LENGTH = 0x51
_IMPLEMENTATION_CLASS_UID = 0x52
_ASYNC_OPS_WINDOW = 0x53
_ROLE_SELECTION = 0x54
_IMPLEMENTATION_VERSION_NAME = 0x55
_SOP_CLASS_EXTENDED = 0x56
_SOP_CLASS_COMMON_EXTENDED = 0x57
_USER_IDENTITY_RQ = 0x58
_USER_IDENTITY_AC = 0x59

_USER_IDENTITY_TYPES = {int(t): t for t in UserIdentityType}

# --- encoding ---------------------------------------------------------------------------------


def encode_user_information(info: UserInformation) -> bytes:
    """Item 0x50 with its sub-items in ascending type order (some old receivers need it)."""
    parts: list[bytes] = [
        w.item(_MAX_LENGTH, w.u32(info.max_length, "maximum length")),
        w.item(
            _IMPLEMENTATION_CLASS_UID,
            w.ascii_bytes(info.implementation_class_uid, "implementation class UID"),
        ),
    ]
    if info.async_ops_window is not None:
        window = info.async_ops_window
        parts.append(
            w.item(
                _ASYNC_OPS_WINDOW,
                w.u16(window.max_invoked, "max operations invoked"),
                w.u16(window.max_performed, "max operations performed"),
            )
        )
    # PS3.7 D.3.3.4: SCU-role byte first, then SCP-role.
    parts.extend(
        w.item(
            _ROLE_SELECTION,
            w.prefixed(w.ascii_bytes(role.sop_class_uid, "role selection UID"), "role UID"),
            bytes((int(role.scu_role), int(role.scp_role))),
        )
        for role in info.role_selections
    )
    if info.implementation_version_name is not None:
        parts.append(_encode_version_name(info.implementation_version_name))
    parts.extend(
        w.item(
            _SOP_CLASS_EXTENDED,
            w.prefixed(w.ascii_bytes(ext.sop_class_uid, "extended negotiation UID"), "SOP UID"),
            ext.service_class_application_information,
        )
        for ext in info.extended_negotiations
    )
    parts.extend(_encode_common_extended(c) for c in info.common_extended_negotiations)
    if info.user_identity_rq is not None:
        ident = info.user_identity_rq
        parts.append(
            w.item(
                _USER_IDENTITY_RQ,
                w.u8(int(ident.identity_type), "user identity type"),
                bytes((int(ident.positive_response_requested),)),
                w.prefixed(ident.primary, "user identity primary field"),
                w.prefixed(ident.secondary, "user identity secondary field"),
            )
        )
    if info.user_identity_ac is not None:
        response = info.user_identity_ac.server_response
        parts.append(w.item(_USER_IDENTITY_AC, w.prefixed(response, "server response")))
    return w.item(USER_INFORMATION, *parts)


def _encode_version_name(name: str) -> bytes:
    # PS3.7 D.3.3.2: 1 to 16 characters of ISO 646.
    raw = w.ascii_bytes(name, "implementation version name")
    if not 1 <= len(raw) <= 16:
        raise LocalProtocolError(f"implementation version name {name!r} must be 1 to 16 characters")
    return w.item(_IMPLEMENTATION_VERSION_NAME, raw)


def _encode_common_extended(neg: SOPClassCommonExtendedNegotiation) -> bytes:
    related = b"".join(
        w.prefixed(w.ascii_bytes(u, "related general SOP class UID"), "related UID")
        for u in neg.related_general_sop_classes
    )
    # PS3.7 D.3.3.6: the reserved byte is the sub-item version, 0.
    return w.item(
        _SOP_CLASS_COMMON_EXTENDED,
        w.prefixed(w.ascii_bytes(neg.sop_class_uid, "SOP class UID"), "SOP class UID"),
        w.prefixed(w.ascii_bytes(neg.service_class_uid, "service class UID"), "service UID"),
        w.prefixed(related, "related general SOP class identification"),
        reserved=0,
    )


# --- decoding ---------------------------------------------------------------------------------


def decode_user_information(buf: memoryview, start: int, end: int) -> UserInformation:
    """Decode the body of item 0x50; unknown sub-items are skipped, any order is accepted."""
    parent = w.item_name(USER_INFORMATION)
    # Lenient defaults (PS3.8 D.1 makes 0x51 mandatory, but 0 means "no limit" anyway).
    max_length: int | None = None
    class_uid: str | None = None
    version_name: str | None = None
    window: AsyncOpsWindow | None = None
    roles: list[RoleSelection] = []
    extended: list[SOPClassExtendedNegotiation] = []
    common: list[SOPClassCommonExtendedNegotiation] = []
    identity_rq: UserIdentityRQ | None = None
    identity_ac: UserIdentityAC | None = None

    def once(seen: object, sub_type: int) -> None:
        if seen is not None:
            raise w.unexpected(w.item_name(sub_type), "appears more than once")

    for sub_type, b, e in w.iter_items(buf, start, end, f"{parent} sub-item"):
        if sub_type == _MAX_LENGTH:
            once(max_length, sub_type)
            _fixed_length(sub_type, e - b, 4)
            max_length = w.read_u32(buf, b, e, w.item_name(sub_type))
        elif sub_type == _IMPLEMENTATION_CLASS_UID:
            once(class_uid, sub_type)
            class_uid = w.lenient_text(buf, b, e)
        elif sub_type == _ASYNC_OPS_WINDOW:
            once(window, sub_type)
            _fixed_length(sub_type, e - b, 4)
            window = AsyncOpsWindow(
                max_invoked=w.read_u16(buf, b, e, w.item_name(sub_type)),
                max_performed=w.read_u16(buf, b + 2, e, w.item_name(sub_type)),
            )
        elif sub_type == _ROLE_SELECTION:
            roles.append(_decode_role(buf, b, e))
        elif sub_type == _IMPLEMENTATION_VERSION_NAME:
            once(version_name, sub_type)
            version_name = w.lenient_text(buf, b, e)
        elif sub_type == _SOP_CLASS_EXTENDED:
            extended.append(_decode_extended(buf, b, e))
        elif sub_type == _SOP_CLASS_COMMON_EXTENDED:
            common.append(_decode_common_extended(buf, b, e))
        elif sub_type == _USER_IDENTITY_RQ:
            once(identity_rq, sub_type)
            identity_rq = _decode_identity_rq(buf, b, e)
        elif sub_type == _USER_IDENTITY_AC:
            once(identity_ac, sub_type)
            name = w.item_name(sub_type)
            # Lenient: an empty body is read as an empty server response.
            response = b"" if e == b else _prefixed(buf, b, e, f"{name} server response")[0]
            identity_ac = UserIdentityAC(server_response=response)
        # PS3.8 D.2 note: sub-items of unknown type are ignored.

    return UserInformation(
        max_length=0 if max_length is None else max_length,
        implementation_class_uid="" if class_uid is None else class_uid,
        implementation_version_name=version_name,
        async_ops_window=window,
        role_selections=tuple(roles),
        extended_negotiations=tuple(extended),
        common_extended_negotiations=tuple(common),
        user_identity_rq=identity_rq,
        user_identity_ac=identity_ac,
    )


def _fixed_length(sub_type: int, length: int, expected: int) -> None:
    if length != expected:
        field = f"{w.item_name(sub_type)} length"
        raise w.invalid(field, f"is {length}, must be {expected}")


def _prefixed(buf: memoryview, start: int, end: int, field: str) -> tuple[bytes, int]:
    """A uint16 length and that many bytes; returns the bytes and the offset after them."""
    length = w.read_u16(buf, start, end, f"{field} length")
    w.need(buf, start + 2, length, end, f"{field} length")
    return bytes(buf[start + 2 : start + 2 + length]), start + 2 + length


def _prefixed_uid(buf: memoryview, start: int, end: int, field: str) -> tuple[str, int]:
    length = w.read_u16(buf, start, end, f"{field} length")
    w.need(buf, start + 2, length, end, f"{field} length")
    return w.uid(buf, start + 2, start + 2 + length, field), start + 2 + length


def _decode_role(buf: memoryview, start: int, end: int) -> RoleSelection:
    name = w.item_name(_ROLE_SELECTION)
    sop_uid, pos = _prefixed_uid(buf, start, end, f"{name} UID")
    w.need(buf, pos, 2, end, f"{name} length")
    # SCU-role first (PS3.7 D.3.3.4); any non-zero value is read as 1. Extra bytes ignored.
    return RoleSelection(sop_uid, scu_role=buf[pos] != 0, scp_role=buf[pos + 1] != 0)


def _decode_extended(buf: memoryview, start: int, end: int) -> SOPClassExtendedNegotiation:
    name = w.item_name(_SOP_CLASS_EXTENDED)
    sop_uid, pos = _prefixed_uid(buf, start, end, f"{name} UID")
    return SOPClassExtendedNegotiation(sop_uid, bytes(buf[pos:end]))


def _decode_common_extended(
    buf: memoryview, start: int, end: int
) -> SOPClassCommonExtendedNegotiation:
    name = w.item_name(_SOP_CLASS_COMMON_EXTENDED)
    sop_uid, pos = _prefixed_uid(buf, start, end, f"{name} SOP class UID")
    service_uid, pos = _prefixed_uid(buf, pos, end, f"{name} service class UID")
    related: list[str] = []
    if pos < end:  # lenient: a missing related-classes field reads as none
        field = f"{name} related general SOP class identification"
        length = w.read_u16(buf, pos, end, f"{field} length")
        w.need(buf, pos + 2, length, end, f"{field} length")
        pos, stop = pos + 2, pos + 2 + length
        while pos < stop:
            related_uid, pos = _prefixed_uid(
                buf, pos, stop, f"{name} related general SOP class UID"
            )
            related.append(related_uid)
    return SOPClassCommonExtendedNegotiation(sop_uid, service_uid, tuple(related))


def _decode_identity_rq(buf: memoryview, start: int, end: int) -> UserIdentityRQ:
    name = w.item_name(_USER_IDENTITY_RQ)
    w.need(buf, start, 2, end, f"{name} length")
    raw_type = buf[start]
    identity_type: UserIdentityType | int = _USER_IDENTITY_TYPES.get(raw_type, raw_type)
    positive = buf[start + 1] != 0
    primary, pos = _prefixed(buf, start + 2, end, f"{name} primary field")
    # Lenient: a missing secondary-field length reads as an empty secondary field.
    secondary = b"" if pos == end else _prefixed(buf, pos, end, f"{name} secondary field")[0]
    return UserIdentityRQ(identity_type, positive, primary, secondary)
