"""Encode and decode the seven PDUs of PS3.8 §9.3 (sans-IO: bytes in, values out).

Decoding follows the receiver rules of PS3.8 §9.3.1 and Annex D: reserved fields are never
tested, unknown items and sub-items are skipped by their length, and every length is checked
against its parent and the buffer before anything is read or allocated. Any byte sequence gives
either a PDU value or RemoteProtocolError whose `field` names the culprit.
"""

from __future__ import annotations

import struct
from typing import Final

from netdicom.core.errors import AbortReason, LocalProtocolError, RemoteProtocolError
from netdicom.core.pdu import _wire as w
from netdicom.core.pdu.types import (
    PDU,
    AbortPDU,
    AssociateAC,
    AssociateRJ,
    AssociateRQ,
    ContextResult,
    PDataTF,
    PDUType,
    PresentationContextAC,
    PresentationContextRQ,
    PresentationDataValue,
    ReleaseRP,
    ReleaseRQ,
    UserInformation,
)
from netdicom.core.pdu.userinfo import (
    USER_INFORMATION,
    decode_user_information,
    encode_user_information,
)

__all__ = ["PDU_NAMES", "decode_pdu", "encode_pdata", "encode_pdata_header", "encode_pdu"]

PDU_NAMES: Final[dict[int, str]] = {
    PDUType.ASSOCIATE_RQ: "A-ASSOCIATE-RQ",
    PDUType.ASSOCIATE_AC: "A-ASSOCIATE-AC",
    PDUType.ASSOCIATE_RJ: "A-ASSOCIATE-RJ",
    PDUType.P_DATA_TF: "P-DATA-TF",
    PDUType.RELEASE_RQ: "A-RELEASE-RQ",
    PDUType.RELEASE_RP: "A-RELEASE-RP",
    PDUType.ABORT: "A-ABORT",
}
"""Standard names of the PDU types, used in error messages and `RemoteProtocolError.field`."""

_PDU_HEADER: Final = struct.Struct(">BxI")  # type, reserved (NT), uint32 PDU-length
_PDATA_HEADER: Final = struct.Struct(">BxIIBB")  # PDU header + one PDV item header
_PDV_HEADER: Final = struct.Struct(">IBB")  # item length, context ID, message control header
_ASSOCIATE_FIXED: Final = 68  # bytes 7..74 of PS3.8 Table 9-11, before the variable items

_APPLICATION_CONTEXT: Final = 0x10
_CONTEXT_RQ: Final = 0x20
_CONTEXT_AC: Final = 0x21
_ABSTRACT_SYNTAX: Final = 0x30
_TRANSFER_SYNTAX: Final = 0x40

_CONTEXT_RESULTS: Final = {int(r): r for r in ContextResult}


# --- encoding ---------------------------------------------------------------------------------


def encode_pdu(pdu: PDU) -> bytes:
    """Encode any PDU, header included.

    Raises LocalProtocolError when a value cannot be encoded (an AE title over 16 bytes or
    not ASCII, a number out of its field's range, an item over 65535 bytes, ...).
    """
    if isinstance(pdu, PDataTF):
        return encode_pdata(pdu)
    if isinstance(pdu, AssociateRQ):
        body = _encode_associate(pdu, _encode_contexts_rq(pdu.presentation_contexts), rq=True)
    elif isinstance(pdu, AssociateAC):
        body = _encode_associate(pdu, _encode_contexts_ac(pdu.presentation_contexts), rq=False)
    elif isinstance(pdu, AssociateRJ):
        body = b"".join(
            (
                b"\x00",  # reserved (PS3.8 Table 9-21)
                w.u8(pdu.result, "A-ASSOCIATE-RJ result"),
                w.u8(pdu.source, "A-ASSOCIATE-RJ source"),
                w.u8(pdu.reason, "A-ASSOCIATE-RJ reason"),
            )
        )
    elif isinstance(pdu, ReleaseRQ | ReleaseRP):
        body = b"\x00\x00\x00\x00"  # reserved (PS3.8 Tables 9-24, 9-25)
    elif isinstance(pdu, AbortPDU):
        body = b"".join(
            (
                b"\x00\x00",  # reserved (PS3.8 Table 9-26)
                w.u8(pdu.source, "A-ABORT source"),
                w.u8(pdu.reason, "A-ABORT reason"),
            )
        )
    else:  # pragma: no cover - the PDU union is closed
        raise LocalProtocolError(f"not a PDU: {pdu!r}")
    return b"".join((_header(pdu.pdu_type, len(body)), body))


def encode_pdata(pdu: PDataTF) -> bytes:
    """Encode a P-DATA-TF with all its PDVs (PS3.8 §9.3.5, Annex E.2)."""
    if not pdu.pdvs:
        raise LocalProtocolError("a P-DATA-TF needs at least one PDV")
    parts: list[bytes | memoryview] = []
    for pdv in pdu.pdvs:
        parts.append(
            _PDV_HEADER.pack(
                _pdv_length(len(pdv.data)),
                _context_id(pdv.context_id),
                _control_header(pdv.is_command, pdv.is_last),
            )
        )
        parts.append(pdv.data)
    length = sum(len(p) for p in parts)
    return b"".join((_header(PDUType.P_DATA_TF, length), *parts))


def encode_pdata_header(
    context_id: int, is_command: bool, is_last: bool, fragment_length: int
) -> bytes:
    """The 12 bytes that precede a fragment in a P-DATA-TF carrying exactly that one PDV.

    The caller writes these bytes and then the fragment itself, so a large fragment never has
    to be copied into a joined buffer.
    """
    return _PDATA_HEADER.pack(
        PDUType.P_DATA_TF,
        _u32_length(fragment_length + 6, "P-DATA-TF length"),
        _pdv_length(fragment_length),
        _context_id(context_id),
        _control_header(is_command, is_last),
    )


def _header(pdu_type: int, length: int) -> bytes:
    return _PDU_HEADER.pack(pdu_type, _u32_length(length, f"{PDU_NAMES[pdu_type]} length"))


def _u32_length(length: int, what: str) -> int:
    if not 0 <= length <= w.MAX_U32:
        raise LocalProtocolError(f"{what} {length} does not fit in 32 bits")
    return length


def _pdv_length(fragment_length: int) -> int:
    if fragment_length < 0:
        raise LocalProtocolError(f"negative fragment length {fragment_length}")
    return _u32_length(fragment_length + 2, "PDV item length")  # + context ID + control header


def _context_id(context_id: int) -> int:
    if not 0 <= context_id <= 0xFF:
        raise LocalProtocolError(f"presentation context ID {context_id} does not fit in one byte")
    return context_id


def _control_header(is_command: bool, is_last: bool) -> int:
    # PS3.8 Annex E.2: bit 0 command (1) / data set (0), bit 1 last fragment; bits 2-7 zero.
    return (1 if is_command else 0) | (2 if is_last else 0)


def _encode_ae_title(title: str, what: str, *, allow_empty: bool) -> bytes:
    raw = w.ascii_bytes(title, what)
    if len(raw) > 16:
        raise LocalProtocolError(f"{what} {title!r} is longer than 16 characters")
    if not allow_empty and not raw.strip(b" "):
        # PS3.8 Table 9-11: a title of all spaces ("no name") shall not be used.
        raise LocalProtocolError(f"{what} must not be empty")
    return raw.ljust(16, b" ")


def _encode_associate(pdu: AssociateRQ | AssociateAC, contexts: list[bytes], *, rq: bool) -> bytes:
    # In the AC these 32 bytes echo the RQ and are not tested (PS3.8 Table 9-17); we write the
    # titles the caller put in the dataclass, normally the RQ's.
    if not contexts:
        raise LocalProtocolError("an association PDU needs at least one presentation context")
    return b"".join(
        (
            w.u16(pdu.protocol_version, "protocol version"),
            b"\x00\x00",  # reserved
            _encode_ae_title(pdu.called_ae_title, "called AE title", allow_empty=not rq),
            _encode_ae_title(pdu.calling_ae_title, "calling AE title", allow_empty=not rq),
            bytes(32),  # reserved
            w.item(
                _APPLICATION_CONTEXT,
                w.ascii_bytes(pdu.application_context_name, "application context name"),
            ),
            *contexts,
            encode_user_information(pdu.user_information),
        )
    )


def _encode_contexts_rq(contexts: tuple[PresentationContextRQ, ...]) -> list[bytes]:
    items = []
    for ctx in contexts:
        if not ctx.transfer_syntaxes:
            raise LocalProtocolError(
                f"presentation context {ctx.context_id} has no transfer syntax"
            )
        items.append(
            w.item(
                _CONTEXT_RQ,
                bytes((_context_id(ctx.context_id), 0, 0, 0)),  # ID, 3 reserved bytes
                w.item(_ABSTRACT_SYNTAX, w.ascii_bytes(ctx.abstract_syntax, "abstract syntax")),
                *(
                    w.item(_TRANSFER_SYNTAX, w.ascii_bytes(ts, "transfer syntax"))
                    for ts in ctx.transfer_syntaxes
                ),
            )
        )
    return items


def _encode_contexts_ac(contexts: tuple[PresentationContextAC, ...]) -> list[bytes]:
    return [
        w.item(
            _CONTEXT_AC,
            # ID, reserved, result/reason, reserved (PS3.8 Table 9-18)
            bytes((_context_id(ctx.context_id), 0, w.u8(int(ctx.result), "result")[0], 0)),
            w.item(_TRANSFER_SYNTAX, w.ascii_bytes(ctx.transfer_syntax, "transfer syntax")),
        )
        for ctx in contexts
    ]


# --- decoding ---------------------------------------------------------------------------------


def decode_pdu(pdu_type: int, body: bytes | bytearray | memoryview) -> PDU:
    """Decode a PDU from its type byte and the bytes after its 6-byte header.

    The `data` of each decoded PDV is a memoryview slice of `body`, not a copy: it aliases
    `body` (and keeps it alive), so do not modify `body` while the PDU is in use.
    Raises RemoteProtocolError (with `field` and `abort_reason`) for anything malformed.
    """
    buf = memoryview(body)
    if buf.ndim != 1 or buf.itemsize != 1:
        buf = buf.cast("B")
    if pdu_type == PDUType.P_DATA_TF:
        return _decode_pdata(buf)
    if pdu_type == PDUType.ASSOCIATE_RQ:
        return _decode_associate(buf, rq=True)
    if pdu_type == PDUType.ASSOCIATE_AC:
        return _decode_associate(buf, rq=False)
    if pdu_type in PDU_NAMES:
        return _decode_short(PDUType(pdu_type), buf)
    raise unknown_pdu(buf)


# What a peer that is no DICOM peer at all sends first, and what to do about it: the bare
# "unknown PDU type 0x48" left the user to work out that 0x48 is the H of HTTP/1.1.
_NOT_DICOM: Final = (
    (b"HTTP", "a web server answered, not a DICOM port: check the port"),
    (b"SSH-", "an SSH server answered, not a DICOM port: check the port"),
    (b"\x15\x03", "the peer answered with a TLS alert: it speaks TLS (add --tls)"),
    (b"\x16\x03", "the peer opened with a TLS handshake: it speaks TLS (add --tls)"),
)


def unknown_pdu(head: bytes | bytearray | memoryview) -> RemoteProtocolError:
    """The error for bytes that start with no PDU type (PS3.8 Table 9-26: unrecognized PDU),
    naming the protocol they look like when it is a common one."""
    start = bytes(head[:4])
    text = f"unknown PDU type 0x{start[0]:02X}" if start else "unknown PDU type"
    for prefix, hint in _NOT_DICOM:
        if start.startswith(prefix):
            text += f" ({hint})"
            break
    return RemoteProtocolError(text, field="PDU type", abort_reason=AbortReason.UNRECOGNIZED_PDU)


def _decode_short(pdu_type: PDUType, buf: memoryview) -> PDU:
    """RJ, RELEASE-RQ/RP and ABORT: a 4-byte body (PS3.8 §9.3.4, §9.3.6-9.3.8)."""
    name = PDU_NAMES[pdu_type]
    # Lenient for release and abort: bytes past the 4 defined ones are ignored. An RJ must be
    # exactly 4 bytes since the association would otherwise be refused on a guess.
    if len(buf) < 4 or (pdu_type == PDUType.ASSOCIATE_RJ and len(buf) != 4):
        raise w.invalid(f"{name} length", f"is {len(buf)}, must be 4")
    if pdu_type == PDUType.ASSOCIATE_RJ:
        return AssociateRJ(result=buf[1], source=buf[2], reason=buf[3])
    if pdu_type == PDUType.ABORT:
        return AbortPDU(source=buf[2], reason=buf[3])
    if pdu_type == PDUType.RELEASE_RQ:
        return ReleaseRQ()
    return ReleaseRP()


def _decode_pdata(buf: memoryview) -> PDataTF:
    pdvs: list[PresentationDataValue] = []
    end = len(buf)
    pos = 0
    while pos < end:
        length = w.read_u32(buf, pos, end, "PDV item length")
        if length < 2:
            raise w.invalid("PDV item length", f"is {length}, must be at least 2")
        w.need(buf, pos + 4, length, end, "PDV item length")
        control = buf[pos + 5]  # PS3.8 Annex E.2: bits 2-7 are not tested
        pdvs.append(
            PresentationDataValue(
                context_id=buf[pos + 4],
                is_command=bool(control & 0x01),
                is_last=bool(control & 0x02),
                data=buf[pos + 6 : pos + 4 + length],
            )
        )
        pos += 4 + length
    if not pdvs:
        raise w.unexpected("PDV item", "a P-DATA-TF must carry at least one PDV")
    return PDataTF(tuple(pdvs))


def _decode_associate(buf: memoryview, *, rq: bool) -> AssociateRQ | AssociateAC:
    name = PDU_NAMES[PDUType.ASSOCIATE_RQ if rq else PDUType.ASSOCIATE_AC]
    end = len(buf)
    w.need(buf, 0, _ASSOCIATE_FIXED, end, f"{name} length")
    # Only bit 0 counts (PS3.8 §9.3.2); the raw value is kept for the state machine to test.
    version = w.read_u16(buf, 0, end, "protocol version")
    called = w.ae_title(buf, 4, "called AE title", strict=rq)
    calling = w.ae_title(buf, 20, "calling AE title", strict=rq)

    app_context: str | None = None
    contexts_rq: list[PresentationContextRQ] = []
    contexts_ac: list[PresentationContextAC] = []
    user_info: UserInformation | None = None
    own_context, other_context = (_CONTEXT_RQ, _CONTEXT_AC) if rq else (_CONTEXT_AC, _CONTEXT_RQ)
    # Items are meant to be in ascending type order (PS3.8 §9.3.2); any order is accepted.
    for item_type, b, e in w.iter_items(buf, _ASSOCIATE_FIXED, end, name):
        if item_type == _APPLICATION_CONTEXT:
            if app_context is not None:
                raise w.unexpected(w.item_name(item_type), f"appears twice in the {name}")
            app_context = w.uid(buf, b, e, "application context name")
        elif item_type == own_context and rq:
            contexts_rq.append(_decode_context_rq(buf, b, e))
        elif item_type == own_context:
            contexts_ac.append(_decode_context_ac(buf, b, e))
        elif item_type == other_context:
            raise w.unexpected(w.item_name(item_type), f"does not belong in an {name}")
        elif item_type == USER_INFORMATION:
            if user_info is not None:
                raise w.unexpected(w.item_name(item_type), f"appears twice in the {name}")
            user_info = decode_user_information(buf, b, e)
        # PS3.8 §9.3.1: items of unknown type are ignored and skipped.

    if app_context is None:
        raise w.unexpected(w.item_name(_APPLICATION_CONTEXT), f"missing from the {name}")
    if not (contexts_rq or contexts_ac):
        # An RQ proposes contexts, an AC answers them.
        verb = "proposes" if rq else "answers"
        raise w.unexpected(w.item_name(own_context), f"the {name} {verb} no context")
    if user_info is None:
        raise w.unexpected(w.item_name(USER_INFORMATION), f"missing from the {name}")
    if rq:
        return AssociateRQ(
            called_ae_title=called,
            calling_ae_title=calling,
            presentation_contexts=tuple(contexts_rq),
            user_information=user_info,
            application_context_name=app_context,
            protocol_version=version,
        )
    return AssociateAC(
        called_ae_title=called,
        calling_ae_title=calling,
        presentation_contexts=tuple(contexts_ac),
        user_information=user_info,
        application_context_name=app_context,
        protocol_version=version,
    )


def _decode_context_rq(buf: memoryview, start: int, end: int) -> PresentationContextRQ:
    name = w.item_name(_CONTEXT_RQ)
    w.need(buf, start, 4, end, f"{name} length")  # ID + 3 reserved bytes (PS3.8 Table 9-13)
    context_id = buf[start]
    abstract: str | None = None
    transfer: list[str] = []
    for sub_type, b, e in w.iter_items(buf, start + 4, end, f"{name} sub-item"):
        if sub_type == _ABSTRACT_SYNTAX:
            if abstract is not None:
                raise w.unexpected(w.item_name(sub_type), f"appears twice in context {context_id}")
            abstract = w.uid(buf, b, e, "abstract syntax name")
        elif sub_type == _TRANSFER_SYNTAX:
            transfer.append(w.uid(buf, b, e, "transfer syntax name"))
    if abstract is None:
        raise w.unexpected(w.item_name(_ABSTRACT_SYNTAX), f"missing in context {context_id}")
    if not transfer:
        raise w.unexpected(w.item_name(_TRANSFER_SYNTAX), f"missing in context {context_id}")
    return PresentationContextRQ(context_id, abstract, tuple(transfer))


def _decode_context_ac(buf: memoryview, start: int, end: int) -> PresentationContextAC:
    name = w.item_name(_CONTEXT_AC)
    w.need(buf, start, 4, end, f"{name} length")  # ID, reserved, result, reserved (Table 9-18)
    context_id = buf[start]
    result = _CONTEXT_RESULTS.get(buf[start + 2])
    if result is None:
        raise w.invalid(f"{name} result/reason", f"unknown value {buf[start + 2]}")
    transfer: list[tuple[int, int]] = [
        (b, e)
        for sub_type, b, e in w.iter_items(buf, start + 4, end, f"{name} sub-item")
        if sub_type == _TRANSFER_SYNTAX
    ]
    if result != ContextResult.ACCEPTANCE:
        # The transfer syntax sub-item is not significant and not tested (PS3.8 Table 9-18).
        if not transfer:
            return PresentationContextAC(context_id, result)
        b, e = transfer[0]
        return PresentationContextAC(context_id, result, w.lenient_text(buf, b, e))
    if len(transfer) != 1:
        raise w.unexpected(
            w.item_name(_TRANSFER_SYNTAX),
            f"an accepted context ({context_id}) needs exactly one, got {len(transfer)}",
        )
    b, e = transfer[0]
    return PresentationContextAC(context_id, result, w.uid(buf, b, e, "transfer syntax name"))
