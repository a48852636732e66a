"""`railwatch` run in a subprocess as a user runs it, for the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli_env(home: Path, **settings: str) -> dict[str, str]:
    """This environment plus a fresh RAILWATCH_HOME and Prefect home, offline, and `settings`."""
    return {**os.environ, "RAILWATCH_HOME": str(home), "RAILWATCH_AOI_DIR": str(REPO / "aois"),
            "PREFECT_HOME": str(home / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1", **settings}


def run_cli(args: list[str], env: dict[str, str], expect: int = 0) -> subprocess.CompletedProcess[str]:
    """Run `railwatch ARGS`; its exit status must be `expect`."""
    proc = subprocess.run([sys.executable, "-m", "railwatch.cli", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == expect, (f"railwatch {' '.join(args)} exited {proc.returncode}:\n"
                                       f"{proc.stdout}\n{proc.stderr}")
    return proc
