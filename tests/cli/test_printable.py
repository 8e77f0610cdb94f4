"""netdicom.core.printable: what a peer sends cannot steer the terminal it is printed on."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest

from netdicom.core.printable import printable


@pytest.mark.parametrize("text", ["DOE^JOHN", "Müller^Hans", "山田^太郎", "a b\\c", ""])
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert printable(text) == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("line\nforged line", "line\\nforged line"),
        ("\x1b]0;window title\x07", "\\x1b]0;window title\\x07"),  # OSC: set the title
        ("\x1b[2J\x1b[31mred", "\\x1b[2J\\x1b[31mred"),  # clear screen, colour
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("abc\u202edcb", "abc\\u202edcb"),  # right-to-left override
        ("cr\roverwrite", "cr\\roverwrite"),
        ("nul\x00", "nul\\x00"),
    ],
)
def test_control_and_invisible_characters_are_escaped(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert printable(text).isprintable()


# --- every place that prints a peer's text on a terminal or a log line --------------------------

EVIL = "line1\nline2 \x1b[31mRED\x1b[0m \x1b]0;title\x07"
EVIL_SHOWN = "line1\\nline2 \\x1b[31mRED\\x1b[0m \\x1b]0;title\\x07"


def _raw(text: str) -> bool:
    return "\x1b" in text or "\x07" in text or "\nline2" in text


def test_stderr_writes_one_escaped_line(capsys: pytest.CaptureFixture[str]) -> None:
    from netdicom.cli.common import stderr

    stderr(f"netdicom: error: C-FIND failed: {EVIL}")
    assert capsys.readouterr().err == f"netdicom: error: C-FIND failed: {EVIL_SHOWN}\n"


def test_fail_escapes_the_message_and_the_hint(capsys: pytest.CaptureFixture[str]) -> None:
    from netdicom.cli.common import fail
    from netdicom.core.errors import AssociationRejected, DimseFailure

    assert fail(DimseFailure(0xC000, f"C-STORE failed: {EVIL}"), debug=False).exit_code == 1
    assert capsys.readouterr().err == f"netdicom: error: C-STORE failed: {EVIL_SHOWN}\n"
    rejected = AssociationRejected(1, 1, 7, message=EVIL)
    assert fail(rejected, debug=False).exit_code == 5
    err = capsys.readouterr().err
    assert not _raw(err) and err.count("\n") == 2 and "hint: " in err


def _match(**values: str) -> Any:
    from pydicom.dataset import Dataset

    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


COLUMNS = ((0x00100010, "PatientName"), (0x00100020, "PatientID"))


def test_find_plain_table_escapes_values_and_keeps_one_line_per_match() -> None:
    from netdicom.render.find_output import TableWriter

    out = io.StringIO()
    writer = TableWriter(out, COLUMNS, rich=False)
    writer.add(_match(PatientName="DOE^JOHN", PatientID=EVIL))
    writer.add(_match(PatientName="ROE^JANE", PatientID="P2"))
    writer.finish()
    lines = out.getvalue().splitlines()
    assert not _raw(out.getvalue())
    assert len(lines) == 3 and lines[1] == f"DOE^JOHN     {EVIL_SHOWN}"


def test_find_rich_table_escapes_values_and_shows_markup_as_text() -> None:
    from netdicom.render.find_output import TableWriter

    out = io.StringIO()
    writer = TableWriter(out, COLUMNS, rich=True)
    # "[/]" closes a style that was never opened: as markup it raises MarkupError.
    writer.add(_match(PatientName="[bold]DOE[/]^JOHN", PatientID="\x1b[31mP1"))
    writer.finish()
    text = out.getvalue()
    assert not _raw(text)
    assert "[bold]DOE[/]^JOHN" in text and "\\x1b[31mP1" in text


def test_find_json_and_csv_stay_data() -> None:
    from netdicom.render.find_output import make_writer

    out = io.StringIO()
    writer = make_writer("csv", COLUMNS, out)
    writer.add(_match(PatientName="A", PatientID="x\x1by"))
    writer.finish()
    assert "x\x1by" in out.getvalue()  # CSV is written as received


def test_find_csv_on_a_terminal_is_escaped() -> None:
    # --csv straight to a terminal: it is shown, so the peer's escapes are not obeyed.
    from netdicom.render.find_output import make_writer

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    writer = make_writer("csv", COLUMNS, out)
    writer.add(_match(PatientName="A", PatientID="x\x1by"))
    writer.finish()
    assert not _raw(out.getvalue()) and "x\\x1by" in out.getvalue()


def test_serve_logs_why_a_tiny_max_pdu_was_rejected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import dataclasses

    from netdicom.core.pdu import AssociateRJ
    from netdicom.services.serve import ServeApp, ServeConfig
    from tests.hardening.raw import echo_rq

    app = ServeApp(ServeConfig(directory=tmp_path, port=0))
    rq = echo_rq()
    rq = dataclasses.replace(
        rq, user_information=dataclasses.replace(rq.user_information, max_length=1)
    )
    with caplog.at_level("WARNING", logger="netdicom"):
        app._log_rejection(rq, "127.0.0.1:1", AssociateRJ(1, 1, 1))
    assert "A-ASSOCIATE-RQ unusable: its maximum PDU length 1 leaves no room" in caplog.text
    assert "the peer's application" not in caplog.text


def test_store_summary_escapes_the_reason_and_the_path() -> None:
    from netdicom.render.store_summary import print_summary
    from netdicom.services.store_scu import FileOutcome, Result, StoreReport

    report = StoreReport(
        outcomes=[
            FileOutcome(
                Path("a.dcm"),
                Result.FAILED,
                sop_instance_uid="1.2",
                status=0xC000,
                status_name="Error: cannot understand",
                reason=EVIL,
            ),
            FileOutcome(Path("b\x1b[2J.dcm"), Result.SKIPPED, reason="not DICOM"),
        ],
        elapsed=1.0,
    )
    out = io.StringIO()
    print_summary(report, "PACS@127.0.0.1:104", out=out)
    text = out.getvalue()
    assert not _raw(text) and "\x1b" not in text
    assert f"  a.dcm: 1.2; 0xC000 Error: cannot understand; {EVIL_SHOWN}" in text.splitlines()
    assert "  b\\x1b[2J.dcm: not DICOM" in text.splitlines()


def test_serve_text_log_escapes_the_message_but_keeps_a_traceback() -> None:
    from netdicom.render.log_text import TextFormatter

    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "netdicom.events", logging.INFO, "", 0, "%s -> NETDICOM: released", (EVIL,), exc_info
    )
    text = TextFormatter(debug=True).format(record)
    first, *rest = text.split("\n")
    assert first.endswith(f" {EVIL_SHOWN} -> NETDICOM: released")
    assert "\x1b" not in text
    assert rest[0] == "Traceback (most recent call last):"  # ours: its lines are kept
    # Without --debug: one line, the exception's words after the message, escaped too.
    plain = TextFormatter().format(record)
    assert "\n" not in plain and "\x1b" not in plain
    assert plain.endswith(f" {EVIL_SHOWN} -> NETDICOM: released: ValueError: boom")


def test_debug_trace_escapes_the_peer_titles(capsys: pytest.CaptureFixture[str]) -> None:
    from netdicom.render.trace import pdu_trace
    from tests.hardening.raw import echo_rq

    pdu_trace("receive", echo_rq(calling_ae_title="EV\x1b[31mIL\nX"))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\x1b" not in err
    assert "<- A-ASSOCIATE-RQ EV\\x1b[31mIL\\nX -> NETDICOM" in err


def test_client_warnings_and_debug_log_are_escaped_and_worded() -> None:
    # A warning of our modules (logging's last resort, no handler set up) and the --debug log
    # quote what peers sent: escaped like every other line of ours.
    import subprocess
    import sys

    code = (
        "import logging\n"
        "from netdicom.cli.common import run\n"
        "async def main():\n"
        "    logging.getLogger('netdicom.get').warning('identifier: %s', 'x\\x1b[2Jy\\nz')\n"
        "run(main(), debug={debug})\n"
    )
    for debug, prefix in ((False, "netdicom: warning: "), (True, "netdicom.get: ")):
        result = subprocess.run(
            [sys.executable, "-c", code.format(debug=debug)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        assert f"{prefix}identifier: x\\x1b[2Jy\\nz" in result.stderr.splitlines(), result.stderr


def test_find_rich_table_never_cuts_a_uid(monkeypatch: pytest.MonkeyPatch) -> None:
    # On a terminal Rich shortened wide columns with "…": a Study Instance UID, the value one
    # copies into get or move, came out as "1.2.826.0.1.36…". UID columns keep their width and
    # the others fold; nothing is cut.
    from netdicom.render.find_output import TableWriter

    monkeypatch.setenv("COLUMNS", "100")
    uid = "1.2.826.0.1.3680043.8.498.12345678901234567890123456789012"
    description = "a description long enough to need folding here"  # 46 < 64 (LO)
    columns = ((0x00100010, "PatientName"), (0x0020000D, "StudyInstanceUID"),
               (0x00081030, "StudyDescription"))  # fmt: skip
    out = io.StringIO()
    writer = TableWriter(out, columns, rich=True)
    writer.add(_match(PatientName="DOE^JOHN", StudyInstanceUID=uid, StudyDescription=description))
    writer.finish()
    text = out.getvalue()
    assert uid in text and "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 100
    # Folded, not cropped: its end was cut off by the terminal's width (walkthrough 7b).
    assert "folding here" in text


def test_a_backslash_in_a_message_is_shown_once() -> None:
    # Error messages quoted values with repr, which doubles a backslash (DICOM's value
    # separator): `Rows='1\\2x'` for what the user typed as `Rows=1\2x`.
    from netdicom.services.find_scu import BadKey, parse_key

    with pytest.raises(BadKey) as caught:
        parse_key("Rows=1\\2x")
    assert "Rows='1\\2x'" in str(caught.value)
    assert "\\\\" not in str(caught.value)


def test_quoted_still_escapes_control_characters() -> None:
    from netdicom.core.printable import quoted

    assert quoted("A\\B\n\x1b") == "'A\\B\\n\\x1b'"
