"""`netdicom find` end to end: subprocesses against `netdicom serve` (and a pynetdicom SCP that
fails every query) on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.dicomfiles import make_dataset, write_instance
from tests.peers import NETDICOM, free_port, running, serve_argv


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root = tmp_path_factory.mktemp("served")
    for i, (name, date) in enumerate(
        [("DOE^JOHN", "20240102"), ("DOE^JANE", "20240301"), ("Müller^Hans", "20231231")]
    ):
        write_instance(
            root / f"{i}.dcm",
            make_dataset(
                patient_id=f"P{i}",
                patient_name=name,
                study_uid=f"1.{i}",
                study_date=date,
                character_set="ISO_IR 100",
            ),
        )
    port = free_port()
    with running(serve_argv(root, port, "--aet", "ARCHIVE"), port):
        yield port


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NETDICOM, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_json_loads_back_with_pydicom(server: int) -> None:
    result = cli("find", f"127.0.0.1:{server}", "--json", "PatientName=doe*", "PatientID=")
    assert result.returncode == 0, result.stderr
    answers = [Dataset.from_json(item) for item in json.loads(result.stdout)]
    assert sorted(str(ds.PatientName) for ds in answers) == ["DOE^JANE", "DOE^JOHN"]
    assert all(ds.QueryRetrieveLevel == "STUDY" and ds.RetrieveAETitle for ds in answers)
    assert "2 matches" in result.stderr


def test_json_is_an_array_even_when_the_association_fails(tmp_path: Path) -> None:
    # Walkthrough 7a: refused, rejected or timed out, stdout was empty and a script's JSON
    # parser failed; the exit code and stderr say what happened.
    port = free_port()
    refused = cli("find", f"127.0.0.1:{port}", "--json", "PatientID=X")
    assert refused.returncode == 4 and json.loads(refused.stdout) == []
    assert "refused" in refused.stderr
    with running(serve_argv(tmp_path, port, "--allow", "OTHER"), port):
        rejected = cli("find", f"127.0.0.1:{port}", "--json", "-q", "PatientID=X")
        as_csv = cli("find", f"127.0.0.1:{port}", "--csv", "PatientID=X")
    assert rejected.returncode == 5 and json.loads(rejected.stdout) == []
    assert as_csv.returncode == 5 and as_csv.stdout == ""  # CSV: no header for no query


def test_quiet_json_prints_the_json_and_nothing_else(server: int) -> None:
    # -q --json printed nothing in find (store, echo, get and move print their JSON).
    result = cli("find", f"127.0.0.1:{server}", "--json", "-q", "PatientName=doe*")
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2 and result.stderr == ""
    # --csv asks for data as --json does (walkthrough 6d: `find -q --csv > x.csv` was empty).
    csv = cli("find", f"127.0.0.1:{server}", "--csv", "-q", "PatientName=doe*")
    assert csv.returncode == 0 and csv.stderr == ""
    assert len(csv.stdout.splitlines()) == 3  # the header and two rows


def test_no_match_is_not_a_failure(server: int) -> None:
    result = cli("find", f"127.0.0.1:{server}", "--json", "PatientName=NOBODY")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_csv_has_a_header_and_decoded_text(server: int) -> None:
    result = cli("find", f"127.0.0.1:{server}", "--csv", "StudyDate=-20231231", "--no-defaults",
                 "PatientName=", "StudyInstanceUID=")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["StudyDate,PatientName,StudyInstanceUID",
                                          "20231231,Müller^Hans,1.2"]  # fmt: skip


def test_plain_table_when_not_a_terminal(server: int) -> None:
    result = cli("find", f"127.0.0.1:{server}", "--level", "series", "StudyInstanceUID=1.0")
    assert result.returncode == 0, result.stderr
    header, row = result.stdout.splitlines()
    assert header.split() == [
        "Modality",
        "SeriesNumber",
        "SeriesDescription",
        "NumberOfSeriesRelatedInstances",
        "SeriesInstanceUID",
        "StudyInstanceUID",
    ]
    assert row.split()[0] == "CT" and row.split()[-1] == "1.0"


def test_tag_keys_max_results_and_out(server: int, tmp_path: Path) -> None:
    out = tmp_path / "responses"
    result = cli("find", f"127.0.0.1:{server}", "--csv", "0010,0010=*", "--max-results", "2",
                 "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3  # header + 2
    assert "cancelled" in result.stderr
    files = sorted(out.iterdir())
    assert len(files) == 2
    written = dcmread(files[0])
    assert written.QueryRetrieveLevel == "STUDY"
    # Our class UID with our version name (it carried pydicom's name).
    assert written.file_meta.ImplementationVersionName == "NETDICOM_010"


def test_out_never_follows_a_link_nor_rewrites_earlier_results(server: int, tmp_path: Path) -> None:
    # A link planted at rsp00001.dcm was followed and the file outside overwritten; a second
    # query rewrote the first one's files and left its extra ones among its own.
    out, outside = tmp_path / "responses", tmp_path / "victim.txt"
    out.mkdir()
    outside.write_text("precious")
    (out / "rsp00001.dcm").symlink_to(outside)
    for _ in range(2):
        result = cli("find", f"127.0.0.1:{server}", "--csv", "PatientName=doe*", "--out", str(out))
        assert result.returncode == 0, result.stderr
    assert outside.read_text() == "precious"
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"rsp{n:05d}.dcm" for n in range(1, 6)]  # the link, then 2 + 2 new
    assert (out / "rsp00001.dcm").is_symlink()
    # Made as every other file of ours: by the umask (the temporary file was 0600).
    mask = os.umask(0)
    os.umask(mask)
    assert (out / "rsp00002.dcm").stat().st_mode & 0o777 == 0o666 & ~mask


def test_out_of_runs_at_once_into_one_folder_keeps_every_response(
    server: int, tmp_path: Path
) -> None:
    # Renamed into place under a number read at the start, responses of runs at once
    # replaced each other: 3 of 8 files left, all exiting 0.
    import subprocess

    from tests.peers import NETDICOM

    out = tmp_path / "responses"
    argv = [*NETDICOM, "find", f"127.0.0.1:{server}", "PatientName=doe*", "--out", str(out), "-q"]
    runs = [subprocess.Popen(argv) for _ in range(4)]
    assert [run.wait(timeout=60) for run in runs] == [0, 0, 0, 0]
    assert len(list(out.glob("rsp*.dcm"))) == 8  # 2 matches each
    assert not list(out.glob(".rsp-*"))  # no temporary file left


def test_default_peer_from_config(server: int, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'default = "arch"\n[peers.arch]\nhost = "127.0.0.1"\nport = {server}\n'
                      'aet = "ARCHIVE"\n')  # fmt: skip
    env = {"NETDICOM_CONFIG": str(config)}
    result = cli("find", "--csv", "PatientID=P1", env=env)
    assert result.returncode == 0, result.stderr
    assert "DOE^JANE" in result.stdout
    result = cli("find", "arch", "--csv", "PatientID=P1", env=env)
    assert result.returncode == 0 and "DOE^JANE" in result.stdout
    echo = cli("echo", env=env)
    assert echo.returncode == 0, echo.stderr
    assert "ARCHIVE@127.0.0.1" in echo.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--level", "patient"],  # study root has no patient level
        ["NotAKeyword=1"],
        ["--json", "--csv"],
        ["PatientName"],  # not KEY=VALUE, and not a peer either
    ],
)
def test_usage_errors_exit_2(server: int, args: list[str]) -> None:
    peer = [] if args == ["PatientName"] else [f"127.0.0.1:{server}"]
    result = cli("find", *peer, *args, env={"NETDICOM_CONFIG": "/nonexistent.toml"})
    assert result.returncode == 2, result.stderr


_FAILING_SCP = textwrap.dedent(
    """
    import sys
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    def on_find(event):
        yield 0xC123, None

    ae = AE("FAILING")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.start_server(("127.0.0.1", int(sys.argv[1])), evt_handlers=[(evt.EVT_C_FIND, on_find)])
    """
)


def test_failure_status_exits_1_with_words(tmp_path: Path) -> None:
    port = free_port()
    script = tmp_path / "failing_scp.py"
    script.write_text(_FAILING_SCP)
    with running([sys.executable, str(script), str(port)], port):
        result = cli("find", f"127.0.0.1:{port}", "PatientName=X")
    assert result.returncode == 1
    assert "unable to process" in result.stderr.lower() and "0xC123" in result.stderr


_NAMING_SCP = textwrap.dedent(
    """
    import sys
    from pydicom.dataset import Dataset
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

    def on_find(event):
        status = Dataset()
        status.Status = 0xC000
        status.ErrorComment = "bad key"
        status.OffendingElement = [0x00100010]
        yield status, None

    ae = AE("NAMING")
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.start_server(("127.0.0.1", int(sys.argv[1])), evt_handlers=[(evt.EVT_C_FIND, on_find)])
    """
)


def test_the_element_a_peer_objects_to_is_named(tmp_path: Path) -> None:
    # Walkthrough 7c: the Offending Element was decoded and never shown.
    port = free_port()
    script = tmp_path / "naming_scp.py"
    script.write_text(_NAMING_SCP)
    with running([sys.executable, str(script), str(port)], port):
        result = cli("find", f"127.0.0.1:{port}", "PatientName=X")
    assert result.returncode == 1
    assert "bad key; offending element (0010,0010) PatientName" in result.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_index_progress_bar_only_on_a_terminal() -> None:
    from netdicom.render.find_output import IndexProgress

    plain = io.StringIO()
    with IndexProgress(plain) as progress:
        progress(5, 10)
    assert plain.getvalue() == ""
    terminal = _Terminal()
    with IndexProgress(terminal) as progress:
        progress(10, 10)
    assert "indexing the archive" in terminal.getvalue()


@pytest.mark.parametrize("command", ["find", "get"])
@pytest.mark.parametrize(
    "key",
    [
        "StudyDate=2024*",
        "StudyDate=2023-2024",
        "StudyTime=10:15",
        "AcquisitionDateTime=2024*",  # DT: sent, and matched nothing without a word
        "AcquisitionDateTime=2024-03-15",
    ],
)
def test_a_date_or_time_key_that_cannot_match_is_a_usage_error(command: str, key: str) -> None:
    # Refused before connecting (nothing listens on port 1): exit 2, the syntax in words.
    # (get and move resolve such keys with a C-FIND first.)
    result = cli(command, "127.0.0.1:1", key)
    assert result.returncode == 2, result.stderr
    assert key.partition("=")[0] in result.stderr and "C.2.2.2.5" in result.stderr


@pytest.mark.parametrize("command", ["find", "get"])
@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("StudyDate=20240231", "20240231 is no day of the calendar"),
        ("StudyDate=20241231-20240101", "the range ends (20240101) before it starts (20241231)"),
        ("StudyTime=25", "25 is no time of day"),
        ("StudyTime=1260-", "1260 is no time of day"),
        ("StudyTime=10-0930", "the range ends (0930) before it starts (10)"),
        ("AcquisitionDateTime=20240101250000", "250000 is no time of day"),
    ],
)
def test_a_date_or_time_that_does_not_exist_is_a_usage_error(
    command: str, key: str, words: str
) -> None:
    # Sent as they were, these matched nothing without a word.
    result = cli(command, "127.0.0.1:1", key)
    assert result.returncode == 2, result.stderr
    assert words in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    "key",
    [
        "StudyDate=20240229",
        "StudyTime=235960",
        "StudyTime=1000-10",
        "StudyDate=-20240101",
        'StudyDate=""',  # empty or absent (walkthrough 6b: refused, though serve matches it)
    ],
)
def test_dates_and_times_that_exist_pass_the_check(key: str) -> None:
    from netdicom.services.find_scu import parse_key

    assert parse_key(key).value == key.partition("=")[2]


@pytest.mark.parametrize(
    "key", ["StudyInstanceUID=1.2.840.*", "SeriesInstanceUID=*", "SOPClassUID=1.2.?"]
)
def test_a_wildcard_uid_key_is_a_usage_error(key: str) -> None:
    # PS3.4 C.2.2.2.4: no wildcards for UI. It was sent, and matched nothing, without a word.
    result = cli("find", "127.0.0.1:1", key)
    assert result.returncode == 2, result.stderr
    assert "never a wildcard (PS3.4 C.2.2.2.4)" in result.stderr


def test_wildcards_and_ranges_pass_without_pydicom_warnings(server: int) -> None:
    result = cli("find", f"127.0.0.1:{server}", "--csv", "--no-defaults", "PatientID=",
                 "ModalitiesInStudy=C*", "StudyDate=20240101-", "StudyTime=00-23")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()[1:]) == [
        "P0,CT,20240102,101500",
        "P1,CT,20240301,101500",
    ]
    assert "Warning" not in result.stderr and "Invalid value" not in result.stderr


@pytest.mark.parametrize("command", ["find", "get"])
@pytest.mark.parametrize(
    ("key", "words"),
    [
        ("Rows=16x", "an integer from 0 to 65535"),
        ("Rows=70000", "an integer from 0 to 65535"),
        ("DiffusionBValue=high", "a decimal number"),
        # IS, DS and AT values pydicom converts: a traceback, exit 1 (walkthrough 7b).
        ("SeriesNumber=1*", "an IS key takes an integer"),
        ("PatientWeight=7O", "a DS key takes a decimal number"),
        ("FrameIncrementPointer=00XY,1063", "an AT key takes a tag such as 0018,1063"),
    ],
)
def test_a_number_key_that_is_no_number_is_a_usage_error(
    command: str, key: str, words: str
) -> None:
    # A US/FD element holds binary numbers, not text: refused before connecting, exit 2.
    result = cli(command, "127.0.0.1:1", "--level", "image", key)
    assert result.returncode == 2, result.stderr
    flat = " ".join(result.stderr.split())  # the usage panel wraps lines
    assert key.partition("=")[0] in flat and words in flat
    assert "Traceback" not in result.stderr


def test_a_tag_key_is_taken_as_the_readme_writes_tags() -> None:
    from netdicom.archive.matching import Level
    from netdicom.services.find_scu import build_identifier

    ds = build_identifier(Level.IMAGE, {0x00280009: "0018,1063\\(0018,1065)"})
    assert list(ds.FrameIncrementPointer) == [0x00181063, 0x00181065]


def test_number_keys_match_and_return_values(server: int) -> None:
    # Every served instance has Rows = Columns = 8 (tests.dicomfiles.make_dataset).
    query = ["--level", "image", "--csv", "--no-defaults", "StudyInstanceUID=1.0"]
    result = cli("find", f"127.0.0.1:{server}", *query, "Rows=8", "Columns=")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["StudyInstanceUID,Rows,Columns", "1.0,8,8"]
    result = cli("find", f"127.0.0.1:{server}", *query, "Rows=9")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["StudyInstanceUID,Rows"]


def test_plain_table_aligns_wide_characters() -> None:
    from netdicom.render.find_output import make_writer

    out = io.StringIO()
    writer = make_writer("table", [(0x00100010, "PatientName"), (0x00100020, "PatientID")], out)
    for name, patient_id in [("山田^太郎", "P1"), ("DOE^JOHN", "P2")]:
        ds = Dataset()
        ds.PatientName, ds.PatientID = name, patient_id
        writer.add(ds)
    writer.finish()
    # Each ideograph takes two columns of a terminal: the IDs line up on screen.
    assert out.getvalue().splitlines() == [
        "PatientName  PatientID",
        "山田^太郎    P1",
        "DOE^JOHN     P2",
    ]


@pytest.mark.parametrize("columns", [80, 160])
def test_a_table_on_a_terminal_never_cuts_a_uid(
    columns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Walkthrough 7b: the UID column kept its width, the table was wider than the terminal,
    # and Rich cropped every line: three studies showed the same cut UID.
    from netdicom.render.find_output import TableWriter

    monkeypatch.setenv("COLUMNS", str(columns))
    keywords = ["PatientName", "StudyDescription", "AccessionNumber", "ReferringPhysicianName",
                "InstitutionName", "StudyID", "Modality"]  # fmt: skip
    tags = [(0x00100010, keywords[0]), (0x00081030, keywords[1]), (0x00080050, keywords[2]),
            (0x00080090, keywords[3]), (0x00080080, keywords[4]), (0x00200010, keywords[5]),
            (0x00080060, keywords[6]), (0x0020000D, "StudyInstanceUID")]  # fmt: skip
    out = _Terminal()
    writer = TableWriter(out, tags, rich=True)
    uids = [f"1.2.826.0.1.3680043.99.1.{n}.{n * 7}.{n * 13}.{n * 31}" for n in (1, 2, 50)]
    for uid in uids:
        ds = Dataset()
        for keyword in keywords:
            setattr(ds, keyword, "SOME TEXT HERE")
        ds.StudyInstanceUID = uid
        writer.add(ds)
    writer.finish()
    # Only the UIDs have digits: read top to bottom, folded or not, they are whole.
    shown = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())  # Rich's bold header
    digits = "".join(c for c in shown if c.isdigit() or c == ".")
    assert digits == "".join(uids)


def test_plain_table_into_a_pipe_streams_after_the_first_rows() -> None:
    # Held to the end, `find | head` waited for the whole query (8 s for 20,000 matches).
    from netdicom.render.find_output import make_writer

    out = io.StringIO()
    writer = make_writer("table", [(0x00100020, "PatientID")], out)
    for number in range(150):
        ds = Dataset()
        ds.PatientID = "P" * (20 if number == 120 else 3)
        writer.add(ds)
        if number == 98:
            assert out.getvalue() == ""  # the first rows set the widths
        if number == 99:
            assert len(out.getvalue().splitlines()) == 101  # header and 100 rows, at once
    writer.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) == 151 and lines[121] == "P" * 20  # a wider value later is whole


@pytest.mark.parametrize("command", ["find", "get", "move"])
@pytest.mark.parametrize(
    ("charset", "words"),
    [
        ("ISO_IR 100", "cannot be written in SpecificCharacterSet='ISO_IR 100'"),
        ("FOO", "SpecificCharacterSet='FOO' is not a character set DICOM defines"),
    ],
)
def test_a_value_its_character_set_cannot_hold_is_a_usage_error(
    command: str, charset: str, words: str
) -> None:
    # Walkthrough 6b: pydicom wrote '?' for each Cyrillic letter, a wildcard: the query
    # matched every name of six letters, exit 0.
    result = cli(command, "127.0.0.1:1", "PatientName=Иванов*", f"SpecificCharacterSet={charset}")
    assert result.returncode == 2, result.stderr
    assert words in " ".join(result.stderr.split())


def test_the_identifier_is_written_in_the_character_set_asked_for() -> None:
    from netdicom.archive.matching import Level
    from netdicom.services.find_scu import build_identifier

    cyrillic = build_identifier(Level.PATIENT, {0x00100010: "Иванов*", 0x00080005: "ISO_IR 144"})
    assert cyrillic.SpecificCharacterSet == "ISO_IR 144"
    # `SpecificCharacterSet=` shows the responses' set: never a zero-length element in the
    # identifier (PS3.4 C.2.2.2), which had also replaced the UTF-8 the value needed.
    shown = build_identifier(Level.PATIENT, {0x00100010: "Иванов*", 0x00080005: ""})
    assert shown.SpecificCharacterSet == "ISO_IR 192"
    plain = build_identifier(Level.PATIENT, {0x00100010: "DOE*", 0x00080005: ""})
    assert "SpecificCharacterSet" not in plain


def test_find_out_sweeps_what_a_killed_run_left(tmp_path: Path) -> None:
    # Walkthrough 6a: SIGKILL mid-write left .rsp-*.part files in DIR for good.
    from pydicom.dataset import Dataset

    from netdicom.services.find_scu import first_response_number, write_response

    gone = subprocess.Popen(["true"])
    gone.wait()  # its PID names no process now
    left = tmp_path / f".rsp-{gone.pid}-abc.part"
    left.write_bytes(b"half")
    running_now = tmp_path / f".rsp-{os.getpid()}-def.part"  # a run going on beside this one
    running_now.write_bytes(b"")
    assert first_response_number(tmp_path) == 1
    assert not left.exists() and running_now.exists()
    ds = Dataset()
    ds.PatientID = "P1"
    write_response(ds, tmp_path, 1, "1.2.840.10008.5.1.4.1.2.2.1")
    assert sorted(p.name for p in tmp_path.iterdir()) == [running_now.name, "rsp00001.dcm"]


@pytest.mark.parametrize("command", ["find", "get"])
def test_a_key_given_twice_with_two_values_is_a_usage_error(command: str) -> None:
    result = cli(command, "127.0.0.1:1", "PatientName=DOE*", "0010,0010=ROE*")
    assert result.returncode == 2, result.stderr
    assert "PatientName is given twice" in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    "keys", [["PatientName=DOE*", "0010,0010="], ["PatientName=", "PatientName=DOE*"]]
)
def test_a_key_given_again_empty_keeps_its_value(keys: list[str]) -> None:
    # Walkthrough 6b, 6d: the later `PatientName=` replaced `PatientName=DOE*`, and the query
    # matched everyone. "Filter on it and show it" keeps the filter.
    from netdicom.services.find_scu import parse_keys

    (key,) = parse_keys(keys)
    assert key.keyword == "PatientName" and key.value == "DOE*"


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("AcquisitionDateTime=20240101120000-0500", None),  # a negative UTC offset, not a range
        ("AcquisitionDateTime=20240101120000+0100", None),
        ("AcquisitionDateTime=20240101120000+1500", "+1500 is no UTC offset"),  # 6v NEW-5
        ("AcquisitionDateTime=20240101120000+0099", "+0099 is no UTC offset"),
        ("AcquisitionDateTime=20240101250000-0500", "250000 is no time of day"),
        ("AcquisitionDateTime=2025-2024", "the range ends (2024) before it starts (2025)"),
    ],
)
def test_date_time_keys_with_offsets(key: str, problem: str | None) -> None:
    from netdicom.services.find_scu import BadKey, parse_key

    if problem is None:
        assert parse_key(key).value == key.partition("=")[2]
        return
    with pytest.raises(BadKey, match=re.escape(problem)):
        parse_key(key)


def test_a_name_the_locale_cannot_hold_is_escaped_not_a_crash(tmp_path: Path) -> None:
    # Walkthrough 7a: under an ISO 8859 locale (PYTHONIOENCODING=latin-1 is what such a
    # locale gives Python), a Japanese name stopped find with an internal error; --json left
    # `[]` ("no match"), and Latin-1 bytes in JSON nobody could read.
    write_instance(
        tmp_path / "jp.dcm",
        make_dataset(patient_id="PATJP", patient_name="Yamada^Tarou=山田^太郎",
                     character_set="ISO_IR 192"),
    )  # fmt: skip
    port = free_port()
    env = {"PYTHONIOENCODING": "latin-1"}
    with running(serve_argv(tmp_path, port), port):
        as_json = cli("find", f"127.0.0.1:{port}", "PatientID=PATJP", "PatientName=", "--json",
                      env=env)  # fmt: skip
        as_csv = cli("find", f"127.0.0.1:{port}", "PatientID=PATJP", "PatientName=", "--csv",
                     env=env)  # fmt: skip
    assert as_json.returncode == 0, as_json.stderr
    assert as_json.stdout.isascii()
    (match,) = json.loads(as_json.stdout)
    assert match["00100010"]["Value"][0]["Ideographic"] == "山田^太郎"
    assert as_csv.returncode == 0, as_csv.stderr
    assert "\\u5c71\\u7530" in as_csv.stdout  # shown escaped, not lost


def test_a_list_of_modalities_finds_any_of_them(tmp_path: Path) -> None:
    # Walkthrough 7b: a list in a key other than a UID matched nothing, without a word.
    for n, modality in enumerate(("CT", "MR", "US")):
        write_instance(tmp_path / f"{n}.dcm", make_dataset(study_uid=f"1.{n}", modality=modality))
    port = free_port()
    with running(serve_argv(tmp_path, port), port):
        series = cli("find", f"127.0.0.1:{port}", "--level", "series", "Modality=CT\\MR", "--json")
        studies = cli("find", f"127.0.0.1:{port}", "ModalitiesInStudy=MR\\US", "--json")
    assert series.returncode == 0 and studies.returncode == 0, series.stderr + studies.stderr
    modalities = sorted(ds["00080060"]["Value"][0] for ds in json.loads(series.stdout))
    assert modalities == ["CT", "MR"]
    assert sorted(ds["0020000D"]["Value"][0] for ds in json.loads(studies.stdout)) == ["1.1", "1.2"]


_REFUSING_SCP = _NAMING_SCP.replace("0xC000", "0xA900").replace('"bad key"', '"no"')


def test_a_refused_query_below_the_top_level_hints_at_the_key_above(tmp_path: Path) -> None:
    # Walkthrough 7c: pynetdicom's qrscp refuses a series query without the study's UID
    # (A900), and said why only in its own log.
    port = free_port()
    script = tmp_path / "refusing_scp.py"
    script.write_text(_REFUSING_SCP)
    with running([sys.executable, str(script), str(port)], port):
        bare = cli("find", f"127.0.0.1:{port}", "--level", "series")
        given = cli("find", f"127.0.0.1:{port}", "--level", "series", "StudyInstanceUID=1.2.3")
    assert bare.returncode == given.returncode == 1
    assert "hint: a hierarchical peer needs one StudyInstanceUID" in bare.stderr
    assert bare.stderr.index("netdicom: error:") < bare.stderr.index("hint:")  # as elsewhere
    assert "give StudyInstanceUID=..., found with --level study first" in bare.stderr
    assert "hint:" not in given.stderr


def test_a_night_is_asked_with_combined_date_time_matching(tmp_path: Path) -> None:
    # Walkthrough 7b: `StudyDate=20240101-20240102 StudyTime=2200-0200` (the night shift,
    # PS3.4 C.2.2.2.5.1) was refused as a range that "matches nothing", and no combined
    # matching was ever proposed though serve implements it.
    for n, (date, time) in enumerate([("20240101", "230000"), ("20240102", "013000"),
                                      ("20240101", "120000")]):  # fmt: skip
        ds = make_dataset(study_uid=f"1.{n}", study_date=date)
        ds.StudyTime = time
        write_instance(tmp_path / "served" / f"{n}.dcm", ds)
    port, other = free_port(), free_port()
    script = tmp_path / "plain_scp.py"
    script.write_text(_NAMING_SCP)  # a pynetdicom SCP: no extended negotiation answered
    night = ["StudyDate=20240101-20240102", "StudyTime=2200-0200", "--json"]
    with running(serve_argv(tmp_path / "served", port), port), \
         running([sys.executable, str(script), str(other)], other):  # fmt: skip
        found = cli("find", f"127.0.0.1:{port}", *night)
        refused = cli("find", f"127.0.0.1:{other}", *night)
    assert found.returncode == 0, found.stderr
    assert sorted(ds["0020000D"]["Value"][0] for ds in json.loads(found.stdout)) == ["1.0", "1.1"]
    assert refused.returncode == 2 and json.loads(refused.stdout) == []
    assert "did not accept combined date-time matching" in refused.stderr


def test_empty_value_matching_works_for_a_number_in_text(tmp_path: Path) -> None:
    # Walkthrough 7 verification: `SeriesNumber=""` (an empty or absent Series Number, PS3.4
    # C.2.2.2.1) was refused: pydicom would convert the two quotes to a number.
    numbered = make_dataset(study_uid="1.1", series_uid="1.1.1")
    unnumbered = make_dataset(study_uid="1.1", series_uid="1.1.2")
    del unnumbered.SeriesNumber
    write_instance(tmp_path / "a.dcm", numbered)
    write_instance(tmp_path / "b.dcm", unnumbered)
    port = free_port()
    with running(serve_argv(tmp_path, port), port):
        result = cli("find", f"127.0.0.1:{port}", "--level", "series", "StudyInstanceUID=1.1",
                     'SeriesNumber=""', "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [ds["0020000E"]["Value"][0] for ds in json.loads(result.stdout)] == ["1.1.2"]
