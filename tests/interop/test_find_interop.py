"""C-FIND against real peers on 127.0.0.1.

- dcmtk findscu -> netdicom serve at every level (exact, wildcard, date range, UID list),
  in both information models.
- netdicom find -> dcmtk dcmqrscp and -> pynetdicom qrscp, loaded with the same files as a
  netdicom serve: the three answer the same.
"""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.dicomfiles import MR, make_dataset, write_instance
from tests.peers import DCMTK_ENV, free_port, have_dcmtk, run_cli, running, serve_argv

pytestmark = pytest.mark.interop
needs_dcmtk = pytest.mark.skipif(not have_dcmtk(), reason="dcmtk is not installed")


def _files(root: Path) -> list[Path]:
    """Two patients, three studies, four series, seven instances."""
    specs = [
        # patient, name, study, date, series, modality, sop class, count
        ("P1", "DOE^JOHN", "1.2.826.0.1.1", "20240102", "1.2.826.0.1.1.1", "CT", None, 3),
        ("P1", "DOE^JOHN", "1.2.826.0.1.1", "20240102", "1.2.826.0.1.1.2", "MR", MR, 1),
        ("P1", "DOE^JOHN", "1.2.826.0.1.2", "20240310", "1.2.826.0.1.2.1", "CT", None, 2),
        ("P2", "ROE^JANE", "1.2.826.0.2.1", "20231115", "1.2.826.0.2.1.1", "MR", MR, 1),
    ]
    paths = []
    for patient, name, study, date, series, modality, sop_class, count in specs:
        for n in range(1, count + 1):
            ds = make_dataset(
                patient_id=patient,
                patient_name=name,
                study_uid=study,
                study_date=date,
                series_uid=series,
                modality=modality,
                sop_instance_uid=f"{series}.{n}",
                instance_number=n,
                **({"sop_class": sop_class} if sop_class else {}),
            )
            paths.append(write_instance(root / f"{series}.{n}.dcm", ds))
    return paths


@pytest.fixture(scope="module")
def dataset_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return _files(tmp_path_factory.mktemp("files"))


@pytest.fixture(scope="module")
def serve_port(
    tmp_path_factory: pytest.TempPathFactory, dataset_files: list[Path]
) -> Iterator[int]:
    root = tmp_path_factory.mktemp("serve")
    for path in dataset_files:
        shutil.copy(path, root / path.name)
    port = free_port()
    with running(serve_argv(root, port, "--aet", "NETDICOM"), port):
        yield port


def findscu(port: int, out: Path, level: str, *keys: str, model: str = "-S") -> list[object]:
    out.mkdir(parents=True, exist_ok=True)
    argv = ["findscu", model, "-aec", "NETDICOM", "-X", "-od", str(out), "-k",
            f"QueryRetrieveLevel={level}"]  # fmt: skip
    for key in keys:
        argv += ["-k", key]
    result = subprocess.run(
        [*argv, "127.0.0.1", str(port)], capture_output=True, text=True, env=DCMTK_ENV, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


@needs_dcmtk
@pytest.mark.parametrize(
    ("level", "keys", "unique", "expected"),
    [
        # exact
        ("STUDY", ["PatientID=P2", "StudyInstanceUID"], "StudyInstanceUID", ["1.2.826.0.2.1"]),
        # wildcard (PN, case-insensitive)
        ("STUDY", ["PatientName=doe*", "StudyInstanceUID"], "StudyInstanceUID",
         ["1.2.826.0.1.1", "1.2.826.0.1.2"]),
        # date range
        ("STUDY", ["StudyDate=20240101-20240131", "StudyInstanceUID"], "StudyInstanceUID",
         ["1.2.826.0.1.1"]),
        # UID list
        ("STUDY", ["StudyInstanceUID=1.2.826.0.1.2\\1.2.826.0.2.1"], "StudyInstanceUID",
         ["1.2.826.0.1.2", "1.2.826.0.2.1"]),
        ("SERIES", ["StudyInstanceUID=1.2.826.0.1.1", "Modality=CT", "SeriesInstanceUID"],
         "SeriesInstanceUID", ["1.2.826.0.1.1.1"]),
        ("IMAGE", ["StudyInstanceUID=1.2.826.0.1.1", "SeriesInstanceUID=1.2.826.0.1.1.1",
                   "InstanceNumber=2", "SOPInstanceUID"], "SOPInstanceUID",
         ["1.2.826.0.1.1.1.2"]),
    ],
)  # fmt: skip
def test_dcmtk_findscu_to_serve_study_root(
    serve_port: int, tmp_path: Path, level: str, keys: list[str], unique: str, expected: list[str]
) -> None:
    answers = findscu(serve_port, tmp_path, level, *keys)
    assert sorted(str(getattr(ds, unique)) for ds in answers) == expected
    assert all(ds.QueryRetrieveLevel == level for ds in answers)


@needs_dcmtk
def test_dcmtk_findscu_to_serve_patient_root(serve_port: int, tmp_path: Path) -> None:
    patients = findscu(serve_port, tmp_path / "p", "PATIENT", "PatientName=*",
                       "PatientID", "NumberOfPatientRelatedStudies", model="-P")  # fmt: skip
    counts = {str(ds.PatientID): int(ds.NumberOfPatientRelatedStudies) for ds in patients}
    assert counts == {"P1": 2, "P2": 1}
    studies = findscu(serve_port, tmp_path / "s", "STUDY", "PatientID=P1",
                      "StudyInstanceUID", "ModalitiesInStudy", model="-P")  # fmt: skip
    modalities = {
        str(ds.StudyInstanceUID): [str(v) for v in ds["ModalitiesInStudy"].value]
        if ds["ModalitiesInStudy"].VM > 1
        else [str(ds.ModalitiesInStudy)]
        for ds in studies
    }
    assert modalities == {"1.2.826.0.1.1": ["CT", "MR"], "1.2.826.0.1.2": ["CT"]}


# --- netdicom find against dcmqrscp and pynetdicom qrscp ------------------------------------

_DCMQRSCP_CONFIG = """\
NetworkTCPPort  = {port}
MaxPDUSize      = 16384
MaxAssociations = 16

HostTable BEGIN
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
DCMQRSCP  {storage}  RW  (100, 1024mb)  ANY
AETable END
"""


@pytest.fixture(scope="module")
def dcmqrscp_port(
    tmp_path_factory: pytest.TempPathFactory, dataset_files: list[Path]
) -> Iterator[int]:
    root = tmp_path_factory.mktemp("dcmqrscp")
    storage = root / "storage"
    storage.mkdir()
    for path in dataset_files:
        shutil.copy(path, storage / path.name)
    subprocess.run(["dcmqridx", str(storage), *sorted(str(p) for p in storage.glob("*.dcm"))],
                   check=True, timeout=60)  # fmt: skip
    port = free_port()
    config = root / "dcmqrscp.cfg"
    config.write_text(_DCMQRSCP_CONFIG.format(port=port, storage=storage))
    # Fork mode (the default): dcmtk 3.6.7's --single-process crashes on its second association.
    with running(["dcmqrscp", "-c", str(config), str(port)], port, env=DCMTK_ENV):
        yield port


_QRSCP_INI = """\
[DEFAULT]
    ae_title: QRSCP
    port: {port}
    max_pdu: 16382
    acse_timeout: 30
    dimse_timeout: 30
    network_timeout: 30
    bind_address: 127.0.0.1
    instance_location: {instances}
    database_location: {database}
    log_identifier: False
"""


@pytest.fixture(scope="module")
def qrscp_port(
    tmp_path_factory: pytest.TempPathFactory, dataset_files: list[Path]
) -> Iterator[int]:
    pytest.importorskip("sqlalchemy", reason="pynetdicom's qrscp needs SQLAlchemy")
    root = tmp_path_factory.mktemp("qrscp")
    port = free_port()
    ini = root / "qrscp.ini"
    ini.write_text(
        _QRSCP_INI.format(port=port, instances=root / "instances", database=root / "db.sqlite")
    )
    argv = [sys.executable, "-m", "pynetdicom", "qrscp", "-c", str(ini)]
    with running(argv, port, cwd=root):
        # Loaded over the network, as a user would: dcmtk storescu when present.
        if have_dcmtk():
            loader = ["storescu", "-aec", "QRSCP", "127.0.0.1", str(port)]
        else:
            loader = [sys.executable, "-m", "pynetdicom", "storescu", "-aec", "QRSCP",
                      "127.0.0.1", str(port)]  # fmt: skip
        subprocess.run([*loader, *map(str, dataset_files)], check=True, timeout=120, env=DCMTK_ENV)
        yield port


QUERIES = [
    ["--level", "study", "PatientName=DOE*", "StudyInstanceUID=", "PatientID=", "StudyDate="],
    ["--level", "study", "StudyDate=20231101-20240131", "StudyInstanceUID="],
    ["--level", "study", "PatientID=P1", "StudyInstanceUID="],
    ["--level", "series", "StudyInstanceUID=1.2.826.0.1.1", "SeriesInstanceUID=", "Modality="],
    ["--level", "image", "StudyInstanceUID=1.2.826.0.1.1", "SeriesInstanceUID=1.2.826.0.1.1.1",
     "SOPInstanceUID="],
    ["--model", "patient", "--level", "patient", "PatientID=", "PatientName="],
]  # fmt: skip


def netdicom_find(peer: str, query: list[str]) -> list[dict[str, str]]:
    result = run_cli("find", peer, "--csv", "--no-defaults", *query)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    return sorted(rows, key=lambda row: sorted(row.items()))


@needs_dcmtk
@pytest.mark.parametrize("query", QUERIES, ids=lambda q: " ".join(q[:4]))
def test_same_answers_from_serve_and_dcmqrscp(
    serve_port: int, dcmqrscp_port: int, query: list[str]
) -> None:
    ours = netdicom_find(f"NETDICOM@127.0.0.1:{serve_port}", query)
    theirs = netdicom_find(f"DCMQRSCP@127.0.0.1:{dcmqrscp_port}", query)
    assert ours, "the query should match something"
    assert ours == theirs


@pytest.mark.parametrize("query", QUERIES[:5], ids=lambda q: " ".join(q[:4]))
def test_same_answers_from_serve_and_pynetdicom_qrscp(
    serve_port: int, qrscp_port: int, query: list[str]
) -> None:
    ours = netdicom_find(f"NETDICOM@127.0.0.1:{serve_port}", query)
    theirs = netdicom_find(f"QRSCP@127.0.0.1:{qrscp_port}", query)
    assert ours, "the query should match something"
    # pynetdicom's qrscp (a demo app) answers an upper-level entity once per instance below
    # it; the distinct answers must be ours, and we must answer each entity once.
    ours_set = {tuple(sorted(row.items())) for row in ours}
    assert len(ours_set) == len(ours)
    assert ours_set == {tuple(sorted(row.items())) for row in theirs}


@needs_dcmtk
def test_dcmtk_findscu_number_keys_to_serve(serve_port: int, tmp_path: Path) -> None:
    # Rows and Columns are US (binary numbers): returned with the instances' values, and
    # matched by value (PS3.4 C.2.2.2.1). Every served instance has Rows = Columns = 8.
    series = ["StudyInstanceUID=1.2.826.0.1.1", "SeriesInstanceUID=1.2.826.0.1.1.1"]
    returned = findscu(serve_port, tmp_path / "r", "IMAGE", *series, "SOPInstanceUID",
                       "Rows", "Columns")  # fmt: skip
    assert len(returned) == 3
    assert {(int(ds.Rows), int(ds.Columns)) for ds in returned} == {(8, 8)}
    matched = findscu(serve_port, tmp_path / "m", "IMAGE", *series, "SOPInstanceUID", "Rows=8")
    assert sorted(str(ds.SOPInstanceUID) for ds in matched) == [
        f"1.2.826.0.1.1.1.{n}" for n in (1, 2, 3)
    ]
    assert findscu(serve_port, tmp_path / "n", "IMAGE", *series, "SOPInstanceUID", "Rows=9") == []
