"""`netdicom store` against real Storage SCPs on 127.0.0.1: dcmtk storescp and pynetdicom."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from netdicom.core import uids
from netdicom.core.datasets import probe_file
from netdicom.core.sop_classes import storage_sop_classes
from netdicom.services.planning import MAX_CONTEXTS
from tests.dicomfiles import make_dataset, make_files, write_instance
from tests.peers import (
    DCMTK_ENV,
    NETDICOM,
    PYNETDICOM,
    free_port,
    have_dcmtk,
    run_cli,
    running,
)

pytestmark = pytest.mark.interop
needs_dcmtk = pytest.mark.skipif(not have_dcmtk(), reason="dcmtk is not installed")

# A pynetdicom Storage SCP with a policy: "explicit" accepts only explicit VR little endian;
# "abort-at-N" aborts the association when the N-th C-STORE arrives.
_PYNETDICOM_SCP = """
import sys
from pathlib import Path
from pynetdicom import AE, evt, AllStoragePresentationContexts

port, out, mode = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
ae = AE(ae_title="PYSCP")
syntaxes = ["1.2.840.10008.1.2.1"] if mode == "explicit" else ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]
for ctx in AllStoragePresentationContexts:
    ae.add_supported_context(ctx.abstract_syntax, syntaxes)
count = 0

def on_store(event):
    global count
    count += 1
    if mode.startswith("abort-at-") and count == int(mode.rsplit("-", 1)[1]):
        event.assoc.abort()
        return 0xC000
    ds = event.dataset
    ds.file_meta = event.file_meta
    ds.save_as(out / (ds.SOPInstanceUID + ".dcm"), enforce_file_format=True)
    return 0

ae.start_server(("127.0.0.1", port), evt_handlers=[(evt.EVT_C_STORE, on_store)])
"""


def _store(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("store", *args, "--json", timeout=120)


def _results(out: str) -> tuple[list[dict[str, object]], dict[str, object]]:
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    summary = lines[-1]["summary"]
    assert isinstance(summary, dict)
    return lines[:-1], summary


def _assert_equal_elements(original_path: Path, stored_path: Path) -> None:
    original, stored = dcmread(original_path), dcmread(stored_path)
    assert [e.tag for e in stored] == [e.tag for e in original]
    for element in original:
        assert stored[element.tag].value == element.value, element.tag


def _stored_by_uid(directory: Path) -> dict[str, Path]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID): p for p in directory.iterdir()}


def _dcmtk_storescp(out: Path, port: int, *options: str) -> list[str]:
    return ["storescp", "-od", str(out), "--max-pdu", "131072", *options, str(port)]


@needs_dcmtk
def test_to_dcmtk_storescp_byte_identical(tmp_path: Path) -> None:
    paths = make_files(tmp_path / "in", 5, rows=128, columns=128)
    paths += make_files(tmp_path / "in2", 2, transfer_syntax=str(ImplicitVRLittleEndian))
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    with running(_dcmtk_storescp(out, port, "+B"), port, env=DCMTK_ENV):
        result = _store(
            f"STORESCP@127.0.0.1:{port}", "-r", str(tmp_path / "in"), str(tmp_path / "in2")
        )
    assert result.returncode == 0, result.stderr
    files, summary = _results(result.stdout)
    assert summary["stored"] == 7 and summary["failed"] == 0
    assert not any(f["converted"] for f in files)
    stored = _stored_by_uid(out)
    for path in paths:
        original = probe_file(path)
        copy = probe_file(stored[original.sop_instance_uid])
        assert copy.transfer_syntax == original.transfer_syntax
        # Bit-preserving storescp: the data set it received is the one we read from disk.
        assert (
            copy.path.read_bytes()[copy.dataset_offset :]
            == path.read_bytes()[original.dataset_offset :]
        )


@needs_dcmtk
def test_dcmtk_accepting_only_implicit(tmp_path: Path) -> None:
    paths = make_files(tmp_path / "in", 3, transfer_syntax=str(ExplicitVRLittleEndian))
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    with running(_dcmtk_storescp(out, port, "+xi", "+B"), port, env=DCMTK_ENV):
        result = _store(f"127.0.0.1:{port}", *map(str, paths))
    assert result.returncode == 0, result.stderr
    files, _ = _results(result.stdout)
    assert all(f["converted"] and f["transfer_syntax"] == uids.IMPLICIT_VR_LE for f in files)
    stored = _stored_by_uid(out)
    for path in paths:
        copy = stored[str(dcmread(path).SOPInstanceUID)]
        assert probe_file(copy).transfer_syntax == uids.IMPLICIT_VR_LE
        _assert_equal_elements(path, copy)


def test_pynetdicom_accepting_only_explicit_with_implicit_files(tmp_path: Path) -> None:
    paths = make_files(tmp_path / "in", 3, transfer_syntax=str(ImplicitVRLittleEndian))
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    argv = [sys.executable, "-c", _PYNETDICOM_SCP, str(port), str(out), "explicit"]
    with running(argv, port):
        result = _store(f"127.0.0.1:{port}", "-r", str(tmp_path / "in"))
    assert result.returncode == 0, result.stderr
    files, _ = _results(result.stdout)
    assert all(f["transfer_syntax"] == uids.EXPLICIT_VR_LE and f["converted"] for f in files)
    stored = _stored_by_uid(out)
    for path in paths:
        _assert_equal_elements(path, stored[str(dcmread(path).SOPInstanceUID)])


def test_to_pynetdicom_storescp_in_parallel(tmp_path: Path) -> None:
    # Enough files that both associations are open before either could take them all (one
    # still negotiating when everything was sent is given up).
    paths = make_files(tmp_path / "in", 24)
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    with running([*PYNETDICOM, "storescp", str(port), "-od", str(out)], port):
        result = _store(f"127.0.0.1:{port}", "-r", str(tmp_path / "in"), "-j", "2")
    assert result.returncode == 0, result.stderr
    _, summary = _results(result.stdout)
    assert summary["stored"] == 24 and summary["associations"] == 2
    stored = _stored_by_uid(out)
    for path in paths:
        _assert_equal_elements(path, stored[str(dcmread(path).SOPInstanceUID)])


@needs_dcmtk
def test_more_than_128_sop_classes_use_several_associations(tmp_path: Path) -> None:
    # dcmtk's storescp refuses the protocol "storage" classes (.200.x) even when promiscuous.
    usable = sorted(s for s in storage_sop_classes() if ".1.1.200." not in s)
    classes = usable[: MAX_CONTEXTS + 5]
    for n, sop_class in enumerate(classes):
        write_instance(tmp_path / "in" / f"{n:03d}.dcm", make_dataset(sop_class=sop_class))
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    with running(_dcmtk_storescp(out, port, "--promiscuous"), port, env=DCMTK_ENV):
        result = _store(f"127.0.0.1:{port}", "-r", str(tmp_path / "in"))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    _, summary = _results(result.stdout)
    assert summary["stored"] == len(classes)
    assert summary["associations"] == 2
    assert len(list(out.iterdir())) == len(classes)


def test_aborting_peer_reports_the_rest_as_not_stored(tmp_path: Path) -> None:
    make_files(tmp_path / "in", 6)
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    argv = [sys.executable, "-c", _PYNETDICOM_SCP, str(port), str(out), "abort-at-3"]
    with running(argv, port):
        result = _store(f"127.0.0.1:{port}", "-r", str(tmp_path / "in"))
    assert result.returncode == 6, result.stderr  # ExitCode.ABORTED
    files, summary = _results(result.stdout)
    assert [f["result"] for f in files] == ["stored"] * 2 + ["failed"] * 4
    # Sent whole, then the peer aborted: it may have been stored, and said so.
    assert "it may have been stored" in str(files[2]["reason"])
    assert all("not sent" in str(f["reason"]) for f in files[3:])
    assert summary["failed"] == 4
    assert len(list(out.iterdir())) == 2


@needs_dcmtk
def test_a_truncated_file_is_not_sent_and_the_rest_are(tmp_path: Path) -> None:
    # A file cut short (a copy interrupted) still has a good header. Sent as it was, dcmtk's
    # storescp aborted the association and every later file failed; a lenient peer would store
    # a damaged instance. It is now listed as failed before anything is sent.
    paths = make_files(tmp_path / "in", 4, rows=64, columns=64)
    damaged = paths[1]
    damaged.write_bytes(damaged.read_bytes()[:-3000])
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    with running(_dcmtk_storescp(out, port), port, env=DCMTK_ENV):
        result = _store(f"STORESCP@127.0.0.1:{port}", "-r", str(tmp_path / "in"))
    assert result.returncode == 1, result.stderr
    files, summary = _results(result.stdout)
    assert summary["stored"] == 3 and summary["failed"] == 1
    failed = [f for f in files if f["result"] == "failed"]
    assert [Path(str(f["file"])).name for f in failed] == [damaged.name]
    assert "truncated" in str(failed[0]["reason"])
    assert len(list(out.iterdir())) == 3


@needs_dcmtk
def test_files_that_change_while_the_run_goes_on_fail_alone(tmp_path: Path) -> None:
    # Planned, then changed before their turn: one cut short (it used to end the data set
    # mid-message: exit 2 and every later file "not sent"), one replaced by another instance
    # (its first planned-length bytes went out under the planned UID). Each now fails alone.
    paths = make_files(tmp_path / "in", 5, rows=64, columns=64)
    (other,) = make_files(tmp_path / "other", 1, rows=64, columns=64)
    cut, replaced = paths[2], paths[3]
    out = tmp_path / "out"
    out.mkdir()
    marker = tmp_path / "first-received"
    port = free_port()
    # Each C-STORE takes storescp a second: the run is still on the first files when the
    # marker appears, long after planning.
    scp = _dcmtk_storescp(out, port, "--sleep-during", "1", "-xcr", f"touch {marker}")
    with running(scp, port, env=DCMTK_ENV):
        proc = subprocess.Popen(
            [*NETDICOM, "store", f"127.0.0.1:{port}", "-r", str(tmp_path / "in"), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        cut.with_suffix(".tmp").write_bytes(cut.read_bytes()[:1000])
        cut.with_suffix(".tmp").replace(cut)
        replaced.with_suffix(".tmp").write_bytes(other.read_bytes())
        replaced.with_suffix(".tmp").replace(replaced)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr  # ExitCode.FAILED: part of the work failed
    files, summary = _results(stdout)
    assert summary["stored"] == 3 and summary["failed"] == 2 and summary["error"] is None
    assert summary["associations"] == 1
    reasons = {
        Path(str(f["file"])).name: str(f["reason"]) for f in files if f["result"] == "failed"
    }
    assert reasons[cut.name].startswith("changed since it was checked: the file is")
    assert "SOP Instance UID" in reasons[replaced.name] and "is now" in reasons[replaced.name]
    stored = _stored_by_uid(out)
    assert len(stored) == 3 and probe_file(other).sop_instance_uid not in stored


@needs_dcmtk
def test_parallel_store_to_a_peer_serving_one_association_at_a_time(tmp_path: Path) -> None:
    # storescp without --fork answers a second A-ASSOCIATE-RQ only once the first association
    # ends. The first used to be held open waiting for the second: the run took --timeout.
    make_files(tmp_path / "in", 10)
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    with running(_dcmtk_storescp(out, port), port, env=DCMTK_ENV):
        started = time.monotonic()
        result = _store(
            f"127.0.0.1:{port}", "-r", str(tmp_path / "in"), "-j", "2", "--timeout", "20"
        )
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 10, elapsed
    assert result.stderr == ""
    _, summary = _results(result.stdout)
    assert summary["stored"] == 10 and summary["error"] is None
    assert len(list(out.iterdir())) == 10
