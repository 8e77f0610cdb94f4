"""Soak, bounded for CI: 300 associations mixing echo, release, abort, back-to-back requests,
hang-ups and garbage against one serve process (benchmarks/soak.py; 2,000+ runs there)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


@pytest.mark.slow
def test_soak_returns_to_baseline() -> None:
    result = subprocess.run(
        [sys.executable, str(SOAK), "--associations", "300", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stdout, result.stderr
    figures = json.loads(result.stdout.splitlines()[-1])
    assert figures["failures"] == {}, figures
    assert sum(figures["mix"].values()) == 300
    assert all(figures["mix"][kind] > 0 for kind in figures["mix"]), figures["mix"]
    # Open file descriptors and asyncio tasks are back to where they were before the run.
    assert figures["after"]["fds"] <= figures["baseline"]["fds"], figures
    assert figures["after"]["tasks"] <= figures["baseline"]["tasks"], figures
    assert figures["after"]["associations"] == 0, figures
    assert figures["rss_growth_kib"] < 10 * 1024, figures
    assert figures["serve_exit"] in (0, -15), figures
    assert figures["seconds"] < 60, figures
    assert result.returncode == 0, result.stdout + result.stderr
