"""A scripted raw-socket DICOM peer for tests: send any bytes, read back exact PDUs.

Blocking sockets on 127.0.0.1, so tests can talk to a `netdicom serve` subprocess (or to an
in-process server running on another thread) byte by byte, and time every answer.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Sequence

from netdicom.core import uids
from netdicom.core.acse import ProposedContext, build_associate_rq
from netdicom.core.dimse import CEchoRQ, CEchoRSP, decode_command, encode_command
from netdicom.core.pdu import (
    PDU,
    AbortPDU,
    AssociateAC,
    AssociateRQ,
    Framer,
    PDataTF,
    PresentationDataValue,
    ReleaseRP,
    ReleaseRQ,
    encode_pdu,
)

ECHO = (ProposedContext(uids.VERIFICATION, (uids.IMPLICIT_VR_LE,)),)


class Closed(Exception):
    """The peer closed the connection while we waited for a PDU."""


def echo_rq(
    called: str = "NETDICOM",
    calling: str = "RAWPEER",
    contexts: Sequence[ProposedContext] = ECHO,
    **changes: object,
) -> AssociateRQ:
    import dataclasses

    rq = build_associate_rq(calling_ae=calling, called_ae=called, contexts=contexts, max_pdu=16384)
    return dataclasses.replace(rq, **changes) if changes else rq  # type: ignore[arg-type]


def pdata(context_id: int, payload: bytes, *, command: bool = True, last: bool = True) -> bytes:
    return encode_pdu(PDataTF((PresentationDataValue(context_id, command, last, payload),)))


def echo_command(message_id: int, context_id: int = 1) -> bytes:
    return pdata(context_id, encode_command(CEchoRQ(message_id)))


class RawPeer:
    """One TCP connection driven by hand."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._framer = Framer(0)

    @classmethod
    def wrap(cls, sock: socket.socket) -> RawPeer:
        peer = cls.__new__(cls)
        peer.sock = sock
        peer._framer = Framer(0)
        return peer

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_pdu(self, pdu: PDU) -> None:
        self.sock.sendall(encode_pdu(pdu))

    def read_pdu(self, timeout: float = 10.0) -> PDU:
        """The next PDU; raises Closed on EOF, TimeoutError if none within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            pdu = self._framer.next_pdu()
            if pdu is not None:
                return pdu
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no PDU within {timeout} s")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            except TimeoutError:
                raise TimeoutError(f"no PDU within {timeout} s") from None
            if not data:
                raise Closed("peer closed the connection")
            self._framer.feed(data)

    def wait_closed(self, timeout: float = 10.0) -> float:
        """Seconds until the peer closes, ignoring any bytes; TimeoutError if it does not."""
        start = time.monotonic()
        deadline = start + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"connection still open after {timeout} s")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            except TimeoutError:
                raise TimeoutError(f"connection still open after {timeout} s") from None
            if not data:
                return time.monotonic() - start

    # --- a well-behaved requestor, for "a C-ECHO straight after still works" ---------------

    def associate(self, rq: AssociateRQ | None = None, timeout: float = 10.0) -> PDU:
        self.send_pdu(rq or echo_rq())
        return self.read_pdu(timeout)

    def echo(self, message_id: int = 1, context_id: int = 1, timeout: float = 10.0) -> int:
        self.send(echo_command(message_id, context_id))
        return self.read_echo_status(message_id, timeout)

    def read_echo_status(self, message_id: int, timeout: float = 10.0) -> int:
        pdu = self.read_pdu(timeout)
        assert isinstance(pdu, PDataTF), pdu
        pdv = pdu.pdvs[0]
        assert pdv.is_command and pdv.is_last
        response = decode_command(bytes(pdv.data))
        assert isinstance(response, CEchoRSP), response
        assert response.message_id_being_responded_to == message_id
        return response.status

    def release(self, timeout: float = 10.0) -> PDU:
        self.send_pdu(ReleaseRQ())
        return self.read_pdu(timeout)


def echo_works(port: int, timeout: float = 5.0) -> float:
    """Associate, C-ECHO, release on a fresh connection; return the seconds it took."""
    start = time.monotonic()
    with RawPeer(port, timeout=timeout) as peer:
        ac = peer.associate(timeout=timeout)
        assert isinstance(ac, AssociateAC), ac
        assert peer.echo(7, timeout=timeout) == 0x0000
        assert isinstance(peer.release(timeout), ReleaseRP)
    return time.monotonic() - start


def abort_of(pdu: PDU) -> tuple[int, int]:
    assert isinstance(pdu, AbortPDU), f"expected A-ABORT, got {pdu!r}"
    return pdu.source, pdu.reason


class ScriptedServer:
    """A listening socket on 127.0.0.1 whose every connection runs `script(peer)` on a thread.

    Exceptions raised by a script are kept in `errors` for the test to check.
    """

    def __init__(self, script: Callable[[RawPeer], None]) -> None:
        self._script = script
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self._listener.getsockname()[1]
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._stop = threading.Event()
        self._listener.settimeout(0.05)  # close() does not wake a blocked accept(): poll

    def __enter__(self) -> ScriptedServer:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._acceptor.join(5)
        self._listener.close()
        for thread in self._threads:
            thread.join(10)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, sock: socket.socket) -> None:
        with RawPeer.wrap(sock) as peer:
            try:
                self._script(peer)
            except (Closed, OSError):
                pass  # the client went away: what the script waited for may never come
            except BaseException as exc:
                self.errors.append(exc)


def accept_echo(peer: RawPeer, rq: PDU | None = None) -> AssociateRQ:
    """Read an A-ASSOCIATE-RQ and accept its first context (for scripted acceptors)."""
    from netdicom.core.pdu import ContextResult, PresentationContextAC, UserInformation

    rq = rq or peer.read_pdu()
    assert isinstance(rq, AssociateRQ), rq
    contexts = tuple(
        PresentationContextAC(pc.context_id, ContextResult.ACCEPTANCE, uids.IMPLICIT_VR_LE)
        for pc in rq.presentation_contexts
    )
    peer.send_pdu(
        AssociateAC(
            rq.called_ae_title, rq.calling_ae_title, contexts, UserInformation(max_length=16384)
        )
    )
    return rq


def answer_echo(peer: RawPeer) -> None:
    """Read one C-ECHO-RQ and answer it with success."""
    pdu = peer.read_pdu()
    assert isinstance(pdu, PDataTF), pdu
    pdv = pdu.pdvs[0]
    request = decode_command(bytes(pdv.data))
    assert isinstance(request, CEchoRQ), request
    peer.send(pdata(pdv.context_id, encode_command(CEchoRSP(request.message_id, 0))))
