"""`netdicom serve` as Storage SCP for real senders: dcmtk storescu and pynetdicom storescu.

What was sent must be on disk byte for byte (the data set after the file meta), whatever the
sender, and a full disk must fail one instance cleanly without ending the service.
"""

from __future__ import annotations

import resource
import struct
import subprocess
import time
from pathlib import Path

import pytest
from pydicom import dcmread

from netdicom.archive.writer import TEMP_DIR
from tests.dicomfiles import make_files
from tests.peers import DCMTK_ENV, PYNETDICOM, free_port, have_dcmtk, running, serve_argv

pytestmark = pytest.mark.interop
needs_dcmtk = pytest.mark.skipif(not have_dcmtk(), reason="dcmtk is not installed")

EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"


def dataset_bytes(path: Path) -> bytes:
    """The bytes after the File Meta Information (PS3.10 §7.1)."""
    raw = path.read_bytes()
    assert raw[128:132] == b"DICM"
    (group_length,) = struct.unpack_from("<L", raw, 132 + 8)
    return raw[132 + 12 + group_length :]


def stored(root: Path) -> dict[str, Path]:
    """SOP Instance UID -> stored file (every file outside the temporary folder)."""
    return {p.stem: p for p in root.rglob("*.dcm") if TEMP_DIR not in p.parts}


def assert_identical(sent: list[Path], root: Path) -> None:
    files = stored(root)
    assert len(files) == len(sent)
    for path in sent:
        uid = dcmread(path, stop_before_pixels=True).SOPInstanceUID
        assert dataset_bytes(files[uid]) == dataset_bytes(path), path
    assert list((root / TEMP_DIR).iterdir()) == []


def storescu(
    port: int, files: list[Path], *options: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *("storescu", "-aec", "NETDICOM", "-aet", "DCMTK", *options),
            *("127.0.0.1", str(port), *map(str, files)),
        ],
        capture_output=True,
        text=True,
        env=DCMTK_ENV,
        timeout=timeout,
    )


@needs_dcmtk
def test_dcmtk_storescu_to_serve_byte_identical(tmp_path: Path) -> None:
    explicit = make_files(tmp_path / "explicit", 4, rows=64, columns=64)
    implicit = make_files(tmp_path / "implicit", 3, transfer_syntax=IMPLICIT, patient_id="P2")
    archive = tmp_path / "archive"
    port = free_port()
    with running(serve_argv(archive, port), port) as server:
        result = storescu(port, explicit)
        assert result.returncode == 0, result.stderr
        result = storescu(port, implicit, "-xi")  # implicit VR only
        assert result.returncode == 0, result.stderr
        assert server.poll() is None
    assert_identical(explicit + implicit, archive)
    for path in stored(archive).values():
        meta = dcmread(path, stop_before_pixels=True).file_meta
        assert meta.SourceApplicationEntityTitle == "DCMTK"
        assert meta.TransferSyntaxUID in (EXPLICIT, IMPLICIT)


@needs_dcmtk
def test_large_instances_from_dcmtk_and_pynetdicom_are_stored_byte_identical(
    tmp_path: Path,
) -> None:
    # Past SPOOL_ABOVE these go through the spool, durably with O_DIRECT where the file system
    # takes it: sizes just over the spool's threshold, under one 1 MiB stage, and over two,
    # none a multiple of the 4 KiB block (the last block is padded, then cut back).
    sizes = [(371, 370), (700, 701), (1100, 1001)]
    sent = [
        make_files(tmp_path / f"src{n}", 1, rows=rows, columns=columns, patient_id=f"L{n}")[0]
        for n, (rows, columns) in enumerate(sizes)
    ]
    more = make_files(tmp_path / "pyn", 1, rows=1200, columns=999, patient_id="L9")
    archive = tmp_path / "archive"
    port = free_port()
    with running(serve_argv(archive, port), port) as server:
        result = storescu(port, sent)
        assert result.returncode == 0, result.stderr
        argv = [*PYNETDICOM, "storescu", "127.0.0.1", str(port), str(more[0]), "-cx"]
        result = subprocess.run(
            [*argv, "-aec", "NETDICOM"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert server.poll() is None
    assert all(path.stat().st_size % 4096 for path in sent + more)
    assert_identical(sent + more, archive)


@needs_dcmtk
def test_dcmtk_deflated_is_stored_as_received(tmp_path: Path) -> None:
    sent = make_files(tmp_path / "src", 2, rows=64, columns=64)
    archive = tmp_path / "archive"
    port = free_port()
    with running(serve_argv(archive, port, "--prefer-ts", "1.2.840.10008.1.2.1.99"), port):
        result = storescu(port, sent, "-xd")
        assert result.returncode == 0, result.stderr
    files = stored(archive)
    for path in sent:
        original = dcmread(path)
        copy = dcmread(files[original.SOPInstanceUID])
        assert copy.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1.99"
        assert copy.PixelData == original.PixelData
        assert copy.PatientName == original.PatientName


def test_pynetdicom_storescu_to_serve_byte_identical(tmp_path: Path) -> None:
    explicit = make_files(tmp_path / "explicit", 3, rows=64, columns=64)
    implicit = make_files(tmp_path / "implicit", 2, transfer_syntax=IMPLICIT, patient_id="P2")
    archive = tmp_path / "archive"
    port = free_port()
    with running(serve_argv(archive, port), port):
        for path in explicit + implicit:
            # -cx: propose the file's own transfer syntax, which serve then accepts.
            argv = [*PYNETDICOM, "storescu", "127.0.0.1", str(port), str(path), "-cx"]
            result = subprocess.run(
                [*argv, "-aec", "NETDICOM"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert "error" not in (result.stdout + result.stderr).lower()
    assert_identical(explicit + implicit, archive)


def test_serve_max_pdu_0_takes_a_6_mb_instance_from_pynetdicom(tmp_path: Path) -> None:
    # --max-pdu 0 announced "no limit": pynetdicom sent the 6 MB data set in one P-DATA-TF,
    # over the 4 MiB serve holds at most, and the association was aborted as invalid. The
    # cap is announced now, and the instance comes in 4 MiB PDUs.
    sent = make_files(tmp_path / "src", 1, rows=1800, columns=1700)
    assert sent[0].stat().st_size > 6_000_000
    archive = tmp_path / "archive"
    port = free_port()
    with running(serve_argv(archive, port, "--max-pdu", "0"), port):
        argv = [*PYNETDICOM, "storescu", "127.0.0.1", str(port), str(sent[0]), "-cx"]
        result = subprocess.run(
            [*argv, "-aec", "NETDICOM"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
    assert_identical(sent, archive)


@needs_dcmtk
def test_dcmtk_as_shipped_without_tcp_nodelay_is_not_slowed_down(tmp_path: Path) -> None:
    # dcmtk writes with Nagle's algorithm unless TCP_NODELAY=1 is in its environment: each
    # message waited for serve's delayed acknowledgment, ~45 ms per instance (60 took ~2.7 s
    # against 0.1 s). serve acknowledges every read at once (TCP_QUICKACK). Compared with
    # the same run with TCP_NODELAY=1, not timed against a clock.
    sent = make_files(tmp_path / "src", 60, rows=8, columns=8)
    port = free_port()
    as_shipped = {k: v for k, v in DCMTK_ENV.items() if k != "TCP_NODELAY"}
    with running(serve_argv(tmp_path / "archive", port, "--no-fsync"), port):
        seconds = {}
        for name, env in (("nodelay", DCMTK_ENV), ("shipped", as_shipped)):
            argv = ["storescu", "-aec", "NETDICOM", "127.0.0.1", str(port), *map(str, sent)]
            started = time.monotonic()
            result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
            seconds[name] = time.monotonic() - started
            assert result.returncode == 0, result.stderr
    assert seconds["shipped"] < max(3 * seconds["nodelay"], 1.0), seconds


@needs_dcmtk
def test_eight_concurrent_dcmtk_senders(tmp_path: Path) -> None:
    batches = [make_files(tmp_path / f"src{n}", 6, patient_id=f"P{n}") for n in range(8)]
    archive = tmp_path / "archive"
    port = free_port()
    with running(serve_argv(archive, port), port):
        procs = [
            subprocess.Popen(
                ["storescu", "-aec", "NETDICOM", "127.0.0.1", str(port), *map(str, batch)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=DCMTK_ENV,
            )
            for batch in batches
        ]
        outputs = [proc.communicate(timeout=60)[0] for proc in procs]
        assert [proc.returncode for proc in procs] == [0] * 8, outputs
    assert_identical([path for batch in batches for path in batch], archive)


def _limit_file_size() -> None:
    # A file-size limit stands in for a full disk: writes beyond it fail with EFBIG (Python
    # ignores SIGXFSZ), exactly where ENOSPC would. Room enough for the query index.
    resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))


@needs_dcmtk
def test_dcmtk_hears_that_an_instance_without_study_is_refused(tmp_path: Path) -> None:
    from tests.dicomfiles import write_instance

    good = make_files(tmp_path / "good", 1)
    orphan_ds = dcmread(good[0])
    orphan_ds.SOPInstanceUID = "1.2.826.0.1.3680043.10.54.2"
    del orphan_ds.StudyInstanceUID
    orphan = write_instance(tmp_path / "orphan.dcm", orphan_ds)
    archive = tmp_path / "archive"
    port = free_port()
    with running(serve_argv(archive, port), port):
        result = storescu(port, [orphan, *good], "-v", "--no-halt")
    output = result.stdout + result.stderr
    assert "Error: DataSetDoesNotMatchSOPClass" in output, output
    assert sorted(stored(archive)) == [dcmread(good[0]).SOPInstanceUID]


@needs_dcmtk
def test_full_disk_fails_one_instance_and_serve_goes_on(tmp_path: Path) -> None:
    big = make_files(tmp_path / "big", 1, rows=512, columns=512, patient_id="BIG")  # 512 KB
    small = make_files(tmp_path / "small", 2, patient_id="SMALL")
    archive = tmp_path / "archive"
    port = free_port()
    argv = serve_argv(archive, port)
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_limit_file_size
    )
    try:
        from tests.peers import wait_for_port

        wait_for_port(port, proc)
        # One association: the big instance fails, the small ones after it are stored.
        result = storescu(port, big + small, "-v", "--no-halt")
        output = result.stdout + result.stderr
        assert "Refused: OutOfResources" in output, output
        assert output.count("Received Store Response (Success)") == 2, output
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
    assert sorted(stored(archive)) == sorted(dcmread(p).SOPInstanceUID for p in small)
    assert list((archive / TEMP_DIR).iterdir()) == []
