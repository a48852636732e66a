"""The embedded LocalCluster's workers report to the flow's own Prefect API. Without the URL in
their environment each worker process started an ephemeral API server of its own (a uvicorn
process per worker, and more writers on one SQLite file): the backfill bench measured the flow
at 1.57× the plain loop with them and 1.30× without."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_runs import REPO, cli_env


@pytest.mark.slow
def test_local_workers_report_to_the_flows_ephemeral_api(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "runner_probe.py")], env=cli_env(tmp_path),
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["pid"] != seen["flow_pid"]  # the task ran in a worker process
    assert seen["flow_url"].startswith("http://127.0.0.1:") and seen["url"] == seen["flow_url"]
    assert not [c for c in seen["children"] if "uvicorn" in c], seen["children"]
    # glibc's malloc as it comes: Dask's nanny sets MALLOC_TRIM_THRESHOLD_=65536, which also pins
    # the mmap threshold, so each large numpy temporary is a fresh mmap (the loop +25 %, sys ×3)
    assert seen["environ"] == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}, seen["environ"]
