"""store_bench's running order: every pair once per round, each at a new place in its set."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def test_each_round_runs_every_pair_once_starting_each_set_elsewhere() -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from store_bench import in_round
    finally:
        sys.path.remove(str(BENCH))
    ct = [("ct", f"s{i}", "r") for i in range(8)]
    tiny = [("tiny", f"s{i}", "r") for i in range(5)]
    pairs = ct + tiny
    rounds = [in_round(pairs, number, 3) for number in (1, 2, 3)]
    assert rounds[0] == pairs  # the first round keeps the planned order
    for order in rounds:
        assert sorted(order) == sorted(pairs)
        assert [name for name, _, _ in order] == ["ct"] * 8 + ["tiny"] * 5  # sets stay whole
    firsts = {order[0] for order in rounds}
    assert len(firsts) == 3  # a different pair opens the ct set in each round
    assert len({order[8] for order in rounds}) == 3
    # No pair keeps its place in its set from one round to the next.
    for a, b in itertools.pairwise(rounds):
        assert all(x != y for x, y in zip(a[:8], b[:8], strict=True))
