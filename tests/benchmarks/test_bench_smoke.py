"""The benchmark scripts run end to end in their tiny `--quick` mode and print their ratios.

Benchmarks are not timed tests: nothing here asserts a speed, only that each script completes,
checks what it sent arrived, and prints the figures and ratios it promises.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers import have_dcmtk

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
pytestmark = [pytest.mark.interop, pytest.mark.slow]
needs_dcmtk = pytest.mark.skipif(not have_dcmtk(), reason="dcmtk is not installed")


def bench(script: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_gen_data_is_deterministic(tmp_path: Path) -> None:
    first = bench("gen_data.py", "--scale", "0.01", "--out", str(tmp_path / "a")).stdout
    bench("gen_data.py", "--scale", "0.01", "--out", str(tmp_path / "b"))
    assert "ct: 5 files" in first and "big: 1 files" in first and "tiny: 20 files" in first
    a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.dcm"))
    b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.dcm"))
    assert a == b and len(a) == 26
    for rel in a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    # A second run finds the set complete and leaves it alone.
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*.dcm")}
    bench("gen_data.py", "--scale", "0.01", "--out", str(tmp_path / "a"))
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*.dcm")} == before


@needs_dcmtk
def test_store_bench_quick(tmp_path: Path) -> None:
    out = bench(
        "store_bench.py",
        "--quick",
        "--data",
        str(tmp_path / "data"),
        "--work",
        str(tmp_path / "w"),
        "--json",
        str(tmp_path / "results.json"),
    ).stdout
    assert "C-STORE throughput" in out and "Ratios" in out, out
    table = out[out.index("C-STORE throughput") : out.index("Ratios")]
    rows = [line for line in table.splitlines() if line.startswith("ct ")]
    assert any(" dcmtk " in row and row.rstrip().endswith("ok") for row in rows), out
    assert rows and all(row.rstrip().endswith("ok") for row in rows), out
    assert "dcmtk → dcmtk vs pynetdicom → pynetdicom" in out
    assert "netdicom → netdicom vs dcmtk → dcmtk" in out
    assert (tmp_path / "results.json").exists()


@needs_dcmtk
def test_echo_bench_quick(tmp_path: Path) -> None:
    out = bench("echo_bench.py", "--quick", "--repeat", "20", "--work", str(tmp_path)).stdout
    assert "C-ECHO round trip" in out and "spawn to exit" in out, out
    assert "round trip netdicom → netdicom median" in out
    assert "start to exit netdicom echo median" in out
    assert "median -" not in out  # every pair produced a figure


def test_memory_bench_quick(tmp_path: Path) -> None:
    out = bench(
        "memory_bench.py",
        "--quick",
        "--size-mb",
        "8",
        "--data",
        str(tmp_path / "data"),
        "--work",
        str(tmp_path / "w"),
    ).stdout
    assert "Peak RSS" in out, out
    assert "netdicom serve (receives)" in out
