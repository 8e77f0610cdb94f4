"""Graceful shutdown of `netdicom serve`: SIGTERM stops accepting, lets a transfer in flight
finish within --shutdown-grace, aborts what is left after it, exits 0, and leaves no partial
file behind (the Storage SCP removes its temporary file when an association ends mid data set).
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from netdicom.core import uids
from netdicom.core.acse import ProposedContext
from netdicom.core.dimse import CStoreRQ, CStoreRSP, decode_command, encode_command
from netdicom.core.pdu import AbortPDU, AssociateAC, PDataTF, ReleaseRP, ReleaseRQ
from tests.dicomfiles import CT, make_dataset
from tests.hardening.raw import Closed, RawPeer, echo_rq, pdata
from tests.leftovers import temp_files
from tests.peers import free_port, running, serve_argv

GRACE = 3.0
FRAGMENT = 16_000


def _dataset() -> tuple[str, bytes]:
    # 2 MiB of pixels, ~132 fragments: more than the spool gathers before it creates the file.
    ds = make_dataset(rows=1024, columns=1024)
    fp = DicomBytesIO()
    fp.is_implicit_VR = False
    fp.is_little_endian = True
    write_dataset(fp, ds)
    return str(ds.SOPInstanceUID), fp.getvalue()


def _start_store(port: int, first: int = 1) -> tuple[RawPeer, str, list[bytes]]:
    """Associate, send the C-STORE-RQ and the `first` fragments; the rest is returned."""
    peer = RawPeer(port)
    rq = echo_rq(contexts=[ProposedContext(CT, (uids.EXPLICIT_VR_LE,))])
    assert isinstance(peer.associate(rq), AssociateAC)
    sop_instance, data = _dataset()
    fragments = [data[i : i + FRAGMENT] for i in range(0, len(data), FRAGMENT)]
    peer.send(pdata(1, encode_command(CStoreRQ(1, CT, sop_instance))))
    for fragment in fragments[:first]:
        peer.send(pdata(1, fragment, command=False, last=False))
    return peer, sop_instance, fragments[first:]


def _stored(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.dcm") if not p.relative_to(root).parts[0].startswith(".")]


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@pytest.mark.slow
def test_sigterm_lets_a_transfer_in_flight_finish(tmp_path: Path) -> None:
    port = free_port()
    argv = serve_argv(tmp_path, port, "--shutdown-grace", "20")
    with running(argv, port) as proc:
        peer, sop_instance, rest = _start_store(port)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert proc.poll() is None, "serve must wait for the transfer"
        assert _refused(port), "no new connections once stopping"
        for i, fragment in enumerate(rest):
            peer.send(pdata(1, fragment, command=False, last=i == len(rest) - 1))
        pdu = peer.read_pdu()
        assert isinstance(pdu, PDataTF)
        response = decode_command(b"".join(bytes(v.data) for v in pdu.pdvs))
        assert isinstance(response, CStoreRSP) and response.status == 0x0000
        peer.send_pdu(ReleaseRQ())
        assert isinstance(peer.read_pdu(), ReleaseRP)
        peer.close()
        assert proc.wait(10) == 0
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert "stopping" in out and "stopped" in out
    stored = _stored(tmp_path)
    assert [p.stem for p in stored] == [sop_instance]
    assert temp_files(tmp_path) == []


@pytest.mark.slow
def test_sigterm_aborts_what_is_unfinished_after_the_grace(tmp_path: Path) -> None:
    port = free_port()
    argv = serve_argv(tmp_path, port, "--shutdown-grace", str(GRACE))
    with running(argv, port) as proc:
        peer, _, _ = _start_store(port, first=100)  # 1.6 MB
        time.sleep(0.3)
        assert temp_files(tmp_path, proc.pid), "the data set is being written to a temporary file"
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # The sender stalls mid data set: after the grace, serve aborts the association.
        with pytest.raises(Closed):
            while True:
                pdu = peer.read_pdu(GRACE + 10)
                if isinstance(pdu, AbortPDU):
                    continue
        assert proc.wait(10) == 0
        took = time.monotonic() - start
        peer.close()
    assert GRACE - 0.5 <= took <= GRACE + 5, took
    assert _stored(tmp_path) == []
    assert temp_files(tmp_path) == [], "a partial data set was left behind"


def test_second_signal_aborts_at_once(tmp_path: Path) -> None:
    port = free_port()
    argv = serve_argv(tmp_path, port, "--shutdown-grace", "60")
    with running(argv, port) as proc:
        peer, _, _ = _start_store(port)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - start < 5
        peer.close()
    assert _stored(tmp_path) == [] and temp_files(tmp_path) == []


def test_sighup_stops_as_gracefully_as_sigterm(tmp_path: Path) -> None:
    # Its default action killed serve at once: exit 129, no log line, peers cut off.
    port = free_port()
    with running(serve_argv(tmp_path, port), port) as proc:
        proc.send_signal(signal.SIGHUP)
        assert proc.wait(10) == 0
    out = proc.stdout.read().decode() if proc.stdout else ""
    assert "stopping" in out and "stopped" in out


def test_sigterm_while_the_index_is_built_stops_and_says_so(tmp_path: Path) -> None:
    # The default action ended serve with 143 and no line in the log.
    import subprocess

    from tests.dicomfiles import make_files

    make_files(tmp_path / "archive", 1500, rows=8, columns=8)
    port = free_port()
    proc = subprocess.Popen(
        serve_argv(tmp_path / "archive", port), stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "building it from the files" in line:
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.communicate(timeout=30)[1]
    text = "".join(seen) + rest
    assert proc.returncode == 0, text
    assert "stopped (SIGTERM) while the index was built" in text
