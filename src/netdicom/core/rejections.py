"""A-ASSOCIATE-RJ and A-ABORT codes in words, with what to try (PS3.8 Tables 9-21, 9-26)."""

from __future__ import annotations

_RESULT = {1: "permanent", 2: "transient"}
_SOURCE = {
    1: "the peer's application (service user)",
    2: "the peer's ACSE provider",
    3: "the peer's presentation provider",
}
_REASON = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognized",
    (1, 7): "called AE title not recognized",
    (2, 1): "no reason given",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}
_HINT = {
    (1, 3): "the peer does not accept our AE title: set it with --aet, $NETDICOM_AET or "
    "calling_aet in the configuration file (case matters), or ask the peer's administrator "
    "to add it",
    (1, 7): "check the called AE title (--aec, or AET@HOST:PORT): it must match the peer's own "
    "title exactly, upper and lower case included",
    (3, 1): "the peer is busy: try again later",
    (3, 2): "the peer has reached its association limit: try again later",
    (1, 2): "the peer does not speak the DICOM application context: is this a DICOM port?",
    (2, 1): "the peer's ACSE provider refused: if it checks user identity, check --username and "
    "--password (PS3.7 D.3.3.7)",
}
_ABORT_REASON = {
    0: "reason not specified",
    1: "unrecognized PDU",
    2: "unexpected PDU",
    4: "unrecognized PDU parameter",
    5: "unexpected PDU parameter",
    6: "invalid PDU parameter value",
}


def describe_rejection(result: int, source: int, reason: int) -> str:
    words = _REASON.get((source, reason), f"reason {reason}")
    return (
        f"association rejected ({_RESULT.get(result, f'result {result}')}) by "
        f"{_SOURCE.get(source, f'source {source}')}: {words}"
    )


def rejection_hint(source: int, reason: int) -> str | None:
    return _HINT.get((source, reason))


def describe_abort(source: int | None, reason: int | None) -> str:
    """Who sent an A-ABORT and why (PS3.8 Table 9-26), to follow a message that already says
    the association was aborted: it never repeats that word."""
    if source == 2:
        why = _ABORT_REASON.get(reason or 0, f"{reason}, which PS3.8 does not define")
        return f"the peer's provider sent A-ABORT (reason: {why})"
    if source == 0:
        # The reason of a service-user abort is not significant (PS3.8 §9.3.8).
        return "the peer's service user sent A-ABORT"
    return (
        f"the peer sent an A-ABORT with source {source}, which PS3.8 Table 9-26 does not "
        f"define (reason {reason})"
    )
