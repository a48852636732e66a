"""bench/clip_bench.py runs end to end in its tiny mode and prints its table (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_clip_bench_prints_its_table(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "clip_bench.py"), "--tiny", "--aois", "2",
         "--cache", str(tmp_path / "cache")],
        cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "Clip bench: 0.5 km AOI in a 1536×1024 px" in out
    for measure in ("bytes fetched vs whole object", "bytes fetched vs intersecting tiles",
                    "wall time, raw loopback", "wall time over a 100 Mbit/s link", "2 Dask workers",
                    "peak memory flat"):
        assert measure in out, out
    # the byte counts are exact (not timings): the tiny AOI needs a small part of the scene
    assert "NOT MET" not in out.split("bytes fetched vs intersecting tiles")[1].splitlines()[0]
