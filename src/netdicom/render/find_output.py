"""The matches of `netdicom find` on stdout: a Rich table on a terminal (plain aligned columns
otherwise, or with NO_COLOR), a JSON array in the DICOM JSON model (PS3.18 F.2) with --json,
CSV with a header row with --csv. JSON and CSV are written as the matches arrive."""

from __future__ import annotations

import csv
import json
import os
import re
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any, Literal, Protocol, TextIO

from netdicom.core.printable import printable

Mode = Literal["table", "json", "csv"]


class MatchWriter(Protocol):
    def add(self, ds: Any) -> None: ...

    def finish(self) -> None: ...


def cell(ds: Any, tag: int) -> str:
    """One attribute of a match as text: values joined with '\\', sequences as a count."""
    if tag not in ds:
        return ""
    element = ds[tag]
    value = element.value
    if element.VR == "SQ":
        return f"({len(value)} item{'s' if len(value) != 1 else ''})" if value else ""
    if value is None or isinstance(value, bytes | bytearray):
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


class JsonWriter:
    """A JSON array, one DICOM JSON object per match, streamed."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._count = 0

    def add(self, ds: Any) -> None:
        # ASCII, non-ASCII as \u escapes: valid JSON whatever the locale's encoding (written
        # in Latin-1 it was no JSON, and a name it could not hold was a crash: walkthrough
        # 7a); store --json does the same.
        text = json.dumps(ds.to_json_dict(bulk_data_threshold=1 << 20))
        self._out.write(("[\n" if self._count == 0 else ",\n") + text)
        self._out.flush()
        self._count += 1

    def finish(self) -> None:
        self._out.write("[]\n" if self._count == 0 else "\n]\n")
        self._out.flush()


class CsvWriter:
    """CSV is data: values as the peer sent them, quoted by the csv module. Only when it goes
    straight to a terminal are they escaped (`printable`), as on every line we show there."""

    def __init__(self, out: TextIO, columns: Sequence[tuple[int, str]]) -> None:
        self._columns = columns
        self._writer = csv.writer(out, lineterminator="\n")
        self._writer.writerow([name for _, name in columns])
        self._out = out
        self._shown = out.isatty()

    def add(self, ds: Any) -> None:
        row = [cell(ds, tag) for tag, _ in self._columns]
        self._writer.writerow([printable(value) for value in row] if self._shown else row)
        self._out.flush()

    def finish(self) -> None:
        self._out.flush()


class TableWriter:
    """A table of every match, printed at the end (column widths need all rows).

    The values are the peer's, shown on a terminal: escaped (`printable`) so that a newline
    cannot break a row and an escape sequence cannot reach the terminal, and given to Rich
    as Text, never as markup, so that "[red]" or "[/]" in a name is shown as it is.
    """

    def __init__(self, out: TextIO, columns: Sequence[tuple[int, str]], *, rich: bool) -> None:
        self._out = out
        self._columns = columns
        self._rows: list[list[str]] = []
        self._rich = rich
        self._widths: list[int] | None = None  # set once plain rows are streamed

    def add(self, ds: Any) -> None:
        row = [printable(cell(ds, tag)) for tag, _ in self._columns]
        if self._widths is not None:
            self._write(row)  # streaming: see below
            return
        self._rows.append(row)
        if not self._rich and len(self._rows) >= _SAMPLE:
            # Plain columns into a pipe: widths from the first rows, then each row as it
            # comes (a wider value later widens its column from there on). Held to the end,
            # `find | head` waited for the whole query (8 s for 20,000 matches).
            self._start_streaming()

    def _start_streaming(self) -> None:
        headers = [name for _, name in self._columns]
        rows = [headers, *self._rows]
        self._widths = [max(display_width(r[i]) for r in rows) for i in range(len(headers))]
        for row in rows:
            self._write(row)
        self._rows.clear()

    def _write(self, row: list[str]) -> None:
        widths = self._widths
        assert widths is not None
        for index, value in enumerate(row):
            widths[index] = max(widths[index], display_width(value))
        line = "  ".join(_pad(v, w) for v, w in zip(row, widths, strict=True))
        self._out.write(line.rstrip() + "\n")

    def finish(self) -> None:
        if not self._rows:
            return
        if not self._rich:
            self._start_streaming()
            return
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        console = Console(file=self._out)
        table = Table(header_style="bold")
        # Nothing is cut with "…": a UID is what one copies into get or move, so its column
        # keeps its width while others fold; when even that cannot fit, it folds. (A width
        # kept regardless made the table wider than the terminal, and Rich cropped every
        # line: three studies showed the same cut UID, walkthrough 7b.)
        kept = {}
        room = console.width - 1 - 3 * len(self._columns)  # borders and padding
        room -= 4 * len(self._columns)  # a few columns for each folded column
        for index in range(len(self._columns)):
            values = [row[index] for row in self._rows]
            if any(values) and all(_UID.fullmatch(v) for v in values if v):
                width = max(map(len, values))
                if width - 4 <= room:
                    kept[index] = width
                    room -= width - 4
        for index, (_, header) in enumerate(self._columns):
            # no_wrap, not min_width: Rich honours a minimum by growing the table past the
            # terminal (the other columns then lost their ends to the crop).
            table.add_column(header, overflow="fold", no_wrap=index in kept)
        for row in self._rows:
            table.add_row(*(Text(value) for value in row))
        console.print(table, crop=False)


_UID = re.compile(r"[0-9]+(\.[0-9]+)+")
# Plain rows that set the column widths before the rest is streamed.
_SAMPLE = 100


def display_width(text: str) -> int:
    """Terminal columns `text` takes: wide and fullwidth characters (CJK ideographs, kana,
    hangul; Unicode East Asian Width W and F) take two, every other character one."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def make_writer(
    mode: Mode, columns: Sequence[tuple[int, str]], out: TextIO | None = None
) -> MatchWriter:
    stream = out or sys.stdout
    if mode == "json":
        return JsonWriter(stream)
    if mode == "csv":
        return CsvWriter(stream, columns)
    rich = stream.isatty() and not os.environ.get("NO_COLOR")
    return TableWriter(stream, columns, rich=rich)


class IndexProgress:
    """A progress bar on stderr (a terminal only) for building the archive index from its
    files: pass the instance as the `progress(done, total)` callback of the rebuild."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stderr
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> IndexProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, done: int, total: int) -> None:
        if not total or not self._out.isatty():
            return
        if self._progress is None:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._progress = Progress(
                TextColumn("indexing the archive"),
                BarColumn(),
                MofNCompleteColumn(),
                console=Console(file=self._out),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("index", total=total)
        self._progress.update(self._task, completed=done, total=total)
