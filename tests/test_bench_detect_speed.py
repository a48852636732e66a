"""bench/detect_speed.py runs end to end on a tiny clip and prints its table (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_prints_table_and_verdict(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "detect_speed.py"), "--scenes", "2", "--size", "200",
         "--days", "3", "--cache", str(tmp_path / "sim")],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Detection speed: 200×200 px" in out
    for stage in ("(a) decode", "(b) detect_image", "(c) detect_image", "(d) pipeline", "(e) history",
                  "(f) model window"):
        assert stage in out, out
    assert "AOI-scenes/s/core" in out and ("MET" in out)
